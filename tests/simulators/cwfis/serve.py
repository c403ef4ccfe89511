"""Run the CWFIS simulator over real HTTP in a thread, on a free port, always stopped."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn

from emberwatch.common.telemetry import free_port
from simulators.cwfis.app import SimConfig, create_app


class RunningSim:
    def __init__(self, url: str, app) -> None:
        self.url = url
        self.app = app
        self.csv_url = f"{url}/downloads/activefires/activefires.csv"
        self.wfs_url = f"{url}/geoserver/wfs"

    def admin(self, what: str, **body) -> dict:
        r = httpx.post(f"{self.url}/_admin/{what}", json=body, timeout=5)
        r.raise_for_status()
        return r.json()

    def state(self) -> dict:
        return httpx.get(f"{self.url}/_admin/state", timeout=5).json()


@contextmanager
def running_sim(config: SimConfig | None = None) -> Iterator[RunningSim]:
    """The simulator on 127.0.0.1:<free port>; the clock is frozen unless ``config`` says otherwise."""
    config = config or SimConfig(speed=0.0)
    app = create_app(config)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise RuntimeError("CWFIS simulator did not start")
        time.sleep(0.02)
    try:
        yield RunningSim(f"http://127.0.0.1:{port}", app)
    finally:
        server.should_exit = True
        thread.join(10)
