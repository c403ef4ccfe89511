"""Run the STAC/COG simulator over real HTTP in a background thread (free port, always stopped)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime

from simulators.stac.app import Clock, SimState, create_app
from tests.support.serve_app import serve_in_thread


def frozen_state(at: datetime, fault_rate: float = 0.0) -> SimState:
    """A simulator whose clock stands still at ``at`` and that answers no fault unless queued."""
    return SimState(clock=Clock(at.astimezone(UTC), speed=0.0), fault_rate=fault_rate)


@contextlib.contextmanager
def running_simulator(state: SimState) -> Iterator[tuple[str, SimState]]:
    with serve_in_thread(create_app(state), "stac simulator") as url:
        yield url, state
