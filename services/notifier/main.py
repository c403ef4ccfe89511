"""Wiring: the broker, four subscriptions (detections optional), the Discord webhook, the digest loop and the bot."""

from __future__ import annotations

import asyncio
import logging

import httpx
from faststream import FastStream

from emberwatch.common.config import Settings, narrow
from emberwatch.common.service import run_service
from emberwatch.contracts import Detection, ModelCandidate, ModelDecision, PipelineAlert
from emberwatch.messaging.broker import build_broker
from emberwatch.messaging.bulk_consumer import subscribe_bulk
from emberwatch.messaging.consumer import consumer_options, send_to_dlq, subscribe
from services.notifier.delivery_store import DeliveryStore
from services.notifier.discord_webhook import DiscordWebhook
from services.notifier.handlers import Notifier
from services.notifier.models import Topics
from services.notifier.render import Links, Renderer
from services.notifier.settings import SERVICE, NotifierSettings

log = logging.getLogger(__name__)



class NotifierRuntime:
    """Everything the notifier runs, with explicit ``start``/``stop`` (used by ``build_app`` and tests)."""

    def __init__(self, settings: NotifierSettings, topics: Topics = Topics(),
                 digest_poll_s: float = 0.25, digest_retry_s: float = 5.0) -> None:
        url = settings.discord_webhook_url.get_secret_value().strip() if settings.discord_webhook_url else ""
        if not url.startswith(("http://", "https://")):
            # The value is never echoed: it may be a mistyped secret.
            raise RuntimeError("EMBERWATCH_DISCORD_WEBHOOK_URL is not set to an http(s) URL (for a local "
                               "Discord, run `emberwatch sim discord` and point it there)")
        self.settings, self.topics = settings, topics
        self.digest_poll_s, self.digest_retry_s = digest_poll_s, digest_retry_s
        self.broker = build_broker(settings, SERVICE, graceful_timeout=10.0)
        self.store = DeliveryStore(settings.state_file)
        self.http = httpx.AsyncClient(timeout=settings.notifier_http_timeout_s,
                                      headers={"User-Agent": "DiscordBot (emberwatch, 0.1)"})
        self.webhook = DiscordWebhook(
            settings.discord_webhook_url, http=self.http,
            max_attempts=settings.notifier_max_attempts, backoff_s=settings.notifier_backoff_s,
            max_backoff_s=settings.notifier_max_backoff_s,
            max_rate_limit_retries=settings.notifier_max_rate_limit_retries,
            max_rate_limit_wait_s=settings.notifier_max_rate_limit_wait_s,
        )
        links = Links(settings.mlflow_ui_url, settings.notifier_grafana_url,
                      settings.notifier_grafana_dashboard_uid, settings.notifier_console_url or None)
        self.notifier = Notifier(
            store=self.store, webhook=self.webhook,
            renderer=Renderer(links, settings.notifier_username, settings.notifier_avatar_url),
            digest_severities=settings.digest_severities, digest_alerts=settings.digest_alerts,
            digest_window_s=settings.notifier_digest_window_s,
            digest_max_events=settings.notifier_digest_max_events,
            dead_letter=self._dead_letter,
        )
        # Posts wait on Discord's rate limits: a batch is kept small so its commit comes soon.
        common = dict(service=SERVICE, **{**consumer_options(settings),
                                          "max_records": min(settings.kafka_batch_max_records, 50)})
        # One consumer group per topic: the consumers never rebalance one another (a shared
        # group made every join wait for the others' rebalances: 13 s instead of 3 s on Tansu).
        group = settings.notifier_group_id
        # Candidates, decisions and detections a batch at a time: what was already posted (a replay)
        # is suppressed with one lookup per batch; a batch that keeps failing is handled again one
        # record at a time (the DLQ path). Alerts one at a time: the digest queues some of them.
        notifier = self.notifier
        subscribe_bulk(self.broker, topics.candidates, ModelCandidate, notifier.on_candidates,
                       notifier.on_candidate, group_id=f"{group}-candidates", **common)
        subscribe_bulk(self.broker, topics.decisions, ModelDecision, notifier.on_decisions,
                       notifier.on_decision, group_id=f"{group}-decisions", **common)
        subscribe(self.broker, topics.alerts, PipelineAlert, notifier.on_alert,
                  group_id=f"{group}-alerts", **common)
        if settings.notifier_post_detections:
            subscribe_bulk(self.broker, topics.detections, Detection, notifier.on_detections,
                           notifier.on_detection, group_id=f"{group}-detections", **common)
        self._stop = asyncio.Event()
        self._digest_task: asyncio.Task[None] | None = None
        self._bot_task: asyncio.Task[None] | None = None
        self._bot = None

    async def _dead_letter(self, body: bytes, topic: str, error: str) -> None:
        topic = self.topics.alerts if topic == PipelineAlert.TOPIC else topic
        await send_to_dlq(self.broker, service=SERVICE, topic=topic, partition=-1, offset=-1, key=None,
                          body=body, reason="permanent", error=error[:900], attempts=1)

    async def start_background(self) -> None:
        """The digest loop, and the bot when a token is configured (after the broker started)."""
        self._stop = asyncio.Event()
        self._digest_task = asyncio.create_task(
            self.notifier.run_digest_loop(self._stop, self.digest_poll_s, self.digest_retry_s),
            name="notifier-digest")
        if self.settings.discord_bot_token is not None:
            from services.notifier.bot import build_bot
            from services.notifier.bot_commands import BotCommands
            from services.notifier.operations import LocalOperations

            commands = BotCommands(LocalOperations(self.settings), self.settings.bot_role_ids,
                                   self.settings.notifier_model_name)
            self._bot = build_bot(commands, guild_id=self.settings.notifier_bot_guild_id)
            token = self.settings.discord_bot_token.get_secret_value()
            self._bot_task = asyncio.create_task(self._bot.start(token), name="notifier-bot")
            self._bot_task.add_done_callback(_report_bot_exit)
            log.info("Discord bot starting", extra={"roles": len(self.settings.bot_role_ids)})

    async def stop_background(self, grace_s: float = 15.0) -> None:
        if self._digest_task is not None:
            self._stop.set()  # let a digest in flight finish, then the loop ends
            try:
                await asyncio.wait_for(asyncio.shield(self._digest_task), timeout=grace_s)
            except (TimeoutError, asyncio.CancelledError, Exception):  # noqa: BLE001
                self._digest_task.cancel()
        if self._bot_task is not None:
            self._bot_task.cancel()
        if self._bot is not None:
            await self._bot.close()
        for task in (self._digest_task, self._bot_task):
            if task is not None:
                try:
                    await task
                except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
                    pass
        self._digest_task = self._bot_task = None

    async def close(self) -> None:
        await self.http.aclose()
        self.store.close()

    async def start(self) -> None:
        await self.broker.start()
        await self.start_background()

    async def stop(self) -> None:
        await self.stop_background()
        await self.broker.stop()
        await self.close()


def _report_bot_exit(task: asyncio.Task[None]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:  # discord.py's errors (e.g. LoginFailure) never contain the token
        log.error("Discord bot stopped", extra={"error": f"{type(exc).__name__}: {exc}"})


def build_app(settings: Settings) -> FastStream:
    runtime = NotifierRuntime(narrow(settings, NotifierSettings))
    return FastStream(runtime.broker, after_startup=[runtime.start_background],
                      on_shutdown=[runtime.stop_background], after_shutdown=[runtime.close])


def main() -> None:
    run_service(SERVICE, build_app)
