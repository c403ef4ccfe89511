"""Run the Discord simulator: ``emberwatch sim discord [--port N]``.

It starts with one webhook whose id and token come from ``EMBERWATCH_SIM_DISCORD_WEBHOOK_ID`` and
``EMBERWATCH_SIM_DISCORD_TOKEN`` (defaults below), so a notifier can be pointed at a stable URL:
``EMBERWATCH_DISCORD_WEBHOOK_URL=http://127.0.0.1:8093/api/webhooks/<id>/<token>``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterator

import uvicorn

from emberwatch.common.telemetry import free_port
from simulators.discord.app import SimState, build_app

DEFAULT_PORT = 8093
DEFAULT_WEBHOOK_ID = "1000000000000000001"
DEFAULT_TOKEN = "emberwatch-simulator-token"


def default_state() -> SimState:
    state = SimState()
    state.add_webhook(
        name="Emberwatch",
        webhook_id=os.environ.get("EMBERWATCH_SIM_DISCORD_WEBHOOK_ID", DEFAULT_WEBHOOK_ID),
        token=os.environ.get("EMBERWATCH_SIM_DISCORD_TOKEN", DEFAULT_TOKEN),
    )
    return state


def main(host: str = "127.0.0.1", port: int = 0) -> None:
    port = port or DEFAULT_PORT
    state = default_state()
    hook = next(iter(state.webhooks.values()))
    print(f"Discord simulator on http://{host}:{port}/ (posted messages: /api/_posted); "
          f"webhook: http://{host}:{port}/api/webhooks/{hook.id}/<token from "
          f"EMBERWATCH_SIM_DISCORD_TOKEN, default {DEFAULT_TOKEN!r}>", file=sys.stderr)
    uvicorn.run(build_app(state), host=host, port=port, log_level="warning")


@contextlib.contextmanager
def serve_in_thread(state: SimState | None = None, host: str = "127.0.0.1") -> Iterator[tuple[str, SimState]]:
    """Run the simulator on a free port in a thread; yields (base_url, state); always stopped."""
    state = state or default_state()
    port = free_port(host)
    server = uvicorn.Server(uvicorn.Config(build_app(state), host=host, port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, name=f"discord-sim-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("discord simulator did not start")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}", state
    finally:
        server.should_exit = True
        thread.join(10)
