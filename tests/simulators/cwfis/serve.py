"""Run the CWFIS simulator over real HTTP in a thread, on a free port, always stopped."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from simulators.cwfis.app import SimConfig, create_app
from tests.support.serve_app import serve_in_thread


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
    with serve_in_thread(app, "CWFIS simulator") as url:
        yield RunningSim(url, app)
