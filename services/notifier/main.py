"""Wiring: the broker, the Discord webhook and the handlers of ``handlers.routes``, the digest loop
and the bot as the app's background tasks; ``emberwatch run notifier``."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import httpx
from faststream import FastStream
from faststream.kafka import KafkaBroker

from emberwatch.common.config import Settings, narrow
from emberwatch.common.service import run_service
from emberwatch.contracts import PipelineAlert
from emberwatch.messaging.broker import build_broker
from emberwatch.messaging.consumer import send_to_dlq
from emberwatch.messaging.subscription import Delivery, subscribe_routes
from services.notifier.delivery_store import DeliveryStore
from services.notifier.discord_webhook import DiscordWebhook
from services.notifier.handlers import DeadLetter, Handlers, routes
from services.notifier.models import Topics
from services.notifier.render import Links, Renderer
from services.notifier.settings import SERVICE, NotifierSettings

log = logging.getLogger(__name__)
STOP_GRACE_S = 15.0


def require_webhook_url(s: NotifierSettings) -> None:
    """Refuse to start without an http(s) webhook URL (the value is never echoed: it may be a
    mistyped secret)."""
    url = s.discord_webhook_url.get_secret_value().strip() if s.discord_webhook_url else ""
    if not url.startswith(("http://", "https://")):
        raise RuntimeError("EMBERWATCH_DISCORD_WEBHOOK_URL is not set to an http(s) URL (for a local "
                           "Discord, run `emberwatch sim discord` and point it there)")


def dead_letter_to(broker: KafkaBroker, topics: Topics) -> DeadLetter:
    """Where the digest sends an alert Discord refused (its own topic's DLQ)."""

    async def dead_letter(body: bytes, topic: str, error: str) -> None:
        topic = topics.alerts if topic == PipelineAlert.TOPIC else topic
        await send_to_dlq(broker, service=SERVICE, topic=topic, partition=-1, offset=-1, key=None,
                          body=body, reason="permanent", error=error[:900], attempts=1)

    return dead_letter


def build_notifier(s: NotifierSettings, broker: KafkaBroker, store: DeliveryStore, http: httpx.AsyncClient,
                   topics: Topics) -> Handlers:
    webhook = DiscordWebhook(
        s.discord_webhook_url, http=http, max_attempts=s.notifier_max_attempts, backoff_s=s.notifier_backoff_s,
        max_backoff_s=s.notifier_max_backoff_s, max_rate_limit_retries=s.notifier_max_rate_limit_retries,
        max_rate_limit_wait_s=s.notifier_max_rate_limit_wait_s)
    links = Links(s.mlflow_ui_url, s.notifier_grafana_url, s.notifier_grafana_dashboard_uid,
                  s.notifier_console_url or None)
    return Handlers(store=store, webhook=webhook, renderer=Renderer(links, s.notifier_username, s.notifier_avatar_url),
                    digest_severities=s.digest_severities, digest_alerts=s.digest_alerts,
                    digest_window_s=s.notifier_digest_window_s, digest_max_events=s.notifier_digest_max_events,
                    dead_letter=dead_letter_to(broker, topics))


def start_bot(s: NotifierSettings) -> tuple[asyncio.Task[None], object] | None:
    """The Discord bot, when a token is configured: its task and the client (to close)."""
    if s.discord_bot_token is None:
        return None
    from services.notifier.bot import build_bot
    from services.notifier.bot_commands import BotCommands
    from services.notifier.operations import LocalOperations

    bot = build_bot(BotCommands(LocalOperations(s), s.bot_role_ids, s.notifier_model_name),
                    guild_id=s.notifier_bot_guild_id)
    task = asyncio.create_task(bot.start(s.discord_bot_token.get_secret_value()), name="notifier-bot")
    task.add_done_callback(_report_bot_exit)
    log.info("Discord bot starting", extra={"roles": len(s.bot_role_ids)})
    return task, bot


def _report_bot_exit(task: asyncio.Task[None]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:  # discord.py's errors (e.g. LoginFailure) never contain the token
        log.error("Discord bot stopped", extra={"error": f"{type(exc).__name__}: {exc}"})


def build_app(settings: Settings, topics: Topics = Topics(), *, digest_poll_s: float = 0.25,
              digest_retry_s: float = 5.0) -> FastStream:
    """The notifier (``topics``: tests give private names; the digest's pace for tests too)."""
    s = narrow(settings, NotifierSettings)
    require_webhook_url(s)
    broker = build_broker(s, SERVICE, graceful_timeout=10.0)
    store = DeliveryStore(s.state_file)
    http = httpx.AsyncClient(timeout=s.notifier_http_timeout_s, headers={"User-Agent": "DiscordBot (emberwatch, 0.1)"})
    notifier = build_notifier(s, broker, store, http, topics)
    # Posts wait on Discord's rate limits: a batch is kept small so its commit comes soon.
    delivery = Delivery.from_settings(s, service=SERVICE, group_id=s.notifier_group_id,
                                      max_records=min(s.kafka_batch_max_records, 50))
    subscribe_routes(broker, routes(notifier, topics, detections=s.notifier_post_detections), delivery)
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    bots: list[object] = []

    async def start_background() -> None:
        stop.clear()
        tasks.append(asyncio.create_task(notifier.run_digest_loop(stop, digest_poll_s, digest_retry_s),
                                         name="notifier-digest"))
        bot = start_bot(s)
        if bot is not None:
            tasks.append(bot[0])
            bots.append(bot[1])

    async def stop_background() -> None:
        stop.set()  # a digest in flight finishes, then the loop ends
        if tasks:
            digest = tasks[0]
            try:
                await asyncio.wait_for(asyncio.shield(digest), timeout=STOP_GRACE_S)
            except (TimeoutError, asyncio.CancelledError, Exception):  # noqa: BLE001
                digest.cancel()
        for task in tasks[1:]:
            task.cancel()
        for bot in bots:
            await bot.close()  # type: ignore[attr-defined]
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        tasks.clear()
        bots.clear()

    async def close() -> None:
        await http.aclose()
        store.close()

    return FastStream(broker, after_startup=[start_background], on_shutdown=[stop_background],
                      after_shutdown=[close])


def main() -> None:
    run_service(SERVICE, build_app)
