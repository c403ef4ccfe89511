"""Run the Mapbox simulator over real HTTP in a background thread (free port, always stopped)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from simulators.mapbox.app import SimState, create_app
from tests.support.serve_app import serve_in_thread


@contextlib.contextmanager
def running_simulator(state: SimState | None = None) -> Iterator[tuple[str, SimState]]:
    state = state or SimState()
    with serve_in_thread(create_app(state), "mapbox simulator") as url:
        yield url, state
