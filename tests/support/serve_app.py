"""Serve an ASGI app on 127.0.0.1:<free port> in a thread, for tests over real HTTP."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import uvicorn

from emberwatch.common.telemetry import free_port


@contextlib.contextmanager
def serve_in_thread(app, name: str, *, start_timeout_s: float = 20.0) -> Iterator[str]:
    """Yield the base URL while ``app`` is served; stop the server and join its thread after."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout_s
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise RuntimeError(f"{name} did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
