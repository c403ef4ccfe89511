"""Run the Mapbox simulator over real HTTP in a background thread (free port, always stopped)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import uvicorn

from emberwatch.common.telemetry import free_port
from simulators.mapbox.app import SimState, create_app


@contextlib.contextmanager
def running_simulator(state: SimState | None = None) -> Iterator[tuple[str, SimState]]:
    state = state or SimState()
    port = free_port()
    config = uvicorn.Config(create_app(state), host="127.0.0.1", port=port, log_level="warning",
                            access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise RuntimeError("mapbox simulator did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", state
    finally:
        server.should_exit = True
        thread.join(10)
