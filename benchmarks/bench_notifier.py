"""The notifier against Discord's default webhook rate limit (5 posts per 2 s), side by side.

1. The webhook client alone, N posts: pausing on ``X-RateLimit-Remaining: 0`` (ours) vs reacting to
   429s only — requests sent, 429s received, time.
2. The whole service (private Tansu + the Discord simulator over HTTP), a burst of N info alerts:
   one post per alert vs the digest — messages, time until the last one is on Discord.
3. ``fit_discord_limits`` on a typical decision and on an oversized digest — µs per call.

Usage: python benchmarks/bench_notifier.py [N]
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
import timeit
from pathlib import Path

import httpx
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

from emberwatch.stack import manage
from services.notifier.discord_webhook import DiscordWebhook
from services.notifier.fit_discord_limits import fit_discord_limits
from services.notifier.main import build_app
from services.notifier.render import Links, Renderer
from simulators.discord.main import serve_in_thread
from tests.conftest import stack_settings
from tests.services.notifier.helpers import alert, decision, notifier_settings, private_topics
from tests.services.notifier.test_service import publish_all


class ReactiveWebhook(DiscordWebhook):
    """The naive client: ignores the rate-limit headers until a 429 arrives."""

    def _note_bucket(self, response: httpx.Response) -> None:
        return None


async def client_run(url: str, state, cls: type[DiscordWebhook], n: int) -> tuple[int, int, float]:
    state.posted.clear()
    state.requests = 0
    for hook in state.webhooks.values():
        hook.window_start, hook.used = 0.0, 0
    async with httpx.AsyncClient(timeout=10) as http:
        hook = cls(SecretStr(url), http=http)
        started = time.perf_counter()
        for i in range(n):
            await hook.post({"content": f"message {i}"})
        elapsed = time.perf_counter() - started
    return state.requests, state.requests - len(state.posted), elapsed


async def service_run(kafka, url: str, state, n: int, digest: bool) -> tuple[int, float]:
    state.posted.clear()
    for hook in state.webhooks.values():
        hook.window_start, hook.used = 0.0, 0
    topics = private_topics()
    overrides = {"notifier_digest_window_s": 1.0} if digest else {
        "notifier_digest_severities": "", "notifier_digest_alerts": ""}
    settings = notifier_settings(kafka, Path(tempfile.mkdtemp()), url, **overrides)
    app = build_app(settings, topics, digest_poll_s=0.05)
    await app.start()
    try:
        alerts = [alert("tile_cached", "info", f"tile {i}", component="tiler") for i in range(n)]
        started = time.perf_counter()
        await publish_all(kafka, topics, alerts)
        expected = 1 if digest else n
        while len(state.posted) < expected:
            await asyncio.sleep(0.02)
        elapsed = time.perf_counter() - started
    finally:
        await app.stop()
    return len(state.posted), elapsed


def main(n: int) -> None:
    console = Console()
    kafka = stack_settings(Path(tempfile.mkdtemp()), "kafka")
    manage.up(kafka)
    try:
        with serve_in_thread() as (base, state):
            state.rate_limit, state.rate_window_s = 5, 2.0  # Discord's default for a webhook
            hook = next(iter(state.webhooks.values()))
            url = f"{base}/api/webhooks/{hook.id}/{hook.token}"

            t1 = Table(title=f"Webhook client, {n} posts, limit 5 per 2 s")
            for col in ("client", "requests", "429s", "seconds"):
                t1.add_column(col, justify="right" if col != "client" else "left")
            for name, cls in (("pause on remaining=0 (ours)", DiscordWebhook),
                              ("429 only", ReactiveWebhook)):
                requests, limited, secs = asyncio.run(client_run(url, state, cls, n))
                t1.add_row(name, str(requests), str(limited), f"{secs:.1f}")
            console.print(t1)

            t2 = Table(title=f"Notifier service, burst of {n} info alerts")
            for col in ("mode", "messages", "seconds to last post"):
                t2.add_column(col, justify="right" if col != "mode" else "left")
            for name, digest in (("one post per alert", False), ("digest (window 1 s)", True)):
                messages, secs = asyncio.run(service_run(kafka, url, state, n, digest))
                t2.add_row(name, str(messages), f"{secs:.1f}")
            console.print(t2)
    finally:
        manage.down(kafka)

    renderer = Renderer(Links("http://mlflow", "http://grafana", "d"), "Emberwatch")
    typical = renderer.decision(decision("promoted", "7"))
    huge = renderer.digest([alert(f"k{i % 40}", "info", "x" * 300) for i in range(500)])
    t3 = Table(title="fit_discord_limits")
    for col in ("payload", "µs per call"):
        t3.add_column(col)
    for name, payload in (("typical decision (fits already)", typical), ("500-alert digest (shortened)", huge)):
        runs = 200 if payload is typical else 20
        secs = timeit.timeit(lambda p=payload: fit_discord_limits(p), number=runs) / runs
        t3.add_row(name, f"{secs * 1e6:,.0f}")
    console.print(t3)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)
