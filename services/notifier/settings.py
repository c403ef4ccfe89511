"""The notifier's own settings (``EMBERWATCH_NOTIFIER_*``), on top of the common ones.

The webhook URL itself is the common secret ``EMBERWATCH_DISCORD_WEBHOOK_URL``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from emberwatch.common.config import Settings

SERVICE = "notifier"  # the service's name: logs, metrics, client ids, event producer

class NotifierSettings(Settings):
    notifier_username: str = Field("Emberwatch", description="Name the webhook posts under.")
    notifier_avatar_url: str | None = Field(None, description="Avatar image URL for webhook posts.")
    notifier_group_id: str = Field("notifier", description="Kafka consumer group of the notifier.")
    notifier_state_file: Path | None = Field(
        None, description="SQLite file of delivered events (default: <state_dir>/notifier/deliveries.sqlite3)."
    )
    notifier_mlflow_ui_url: str | None = Field(
        None, description="MLflow UI base URL for links (default: the tracking URI)."
    )
    notifier_grafana_url: str = Field("http://127.0.0.1:3000", description="Grafana base URL for links.")
    notifier_grafana_dashboard_uid: str = Field(
        "emberwatch-models", description="Grafana dashboard uid linked from decisions."
    )
    notifier_post_detections: bool = Field(
        True, description="Post every detection (detections.v1: a live tile the champion called a wildfire) "
        "with \"this is a fire\" / \"this is not a fire\" buttons; the buttons answer only on a webhook "
        "owned by the bot's application, elsewhere the post says to use /label.")
    notifier_console_url: str | None = Field(
        "http://127.0.0.1:8090", description="The operator console's address, for links to a tile's image "
        "in detection posts (empty: no link).")
    notifier_http_timeout_s: float = Field(10.0, description="Timeout of one webhook request.")
    notifier_max_attempts: int = Field(
        5, description="Webhook attempts on 5xx/network errors before the message is retried by Kafka."
    )
    notifier_backoff_s: float = Field(0.5, description="First backoff after a 5xx/network error.")
    notifier_max_backoff_s: float = Field(30.0, description="Longest backoff between attempts.")
    notifier_max_rate_limit_retries: int = Field(
        20, description="429 answers tolerated for one post before it counts as failed."
    )
    notifier_max_rate_limit_wait_s: float = Field(
        120.0, description="Longest single rate-limit wait; longer ones fail the attempt instead."
    )
    notifier_digest_window_s: float = Field(
        60.0, description="Low-priority events are collected this long, then posted as one digest."
    )
    notifier_digest_max_events: int = Field(
        200, description="A digest is posted early once this many events are waiting."
    )
    notifier_digest_severities: str = Field(
        "info", description="Alert severities that go into the digest, comma-separated."
    )
    notifier_digest_alerts: str = Field(
        "new_fire,fire_observed,fire_new",
        description="Alert names (the `alert` field) that go into the digest whatever their severity.",
    )
    notifier_model_name: str = Field(
        "emberwatch-resnet50", description="Registered model the bot's commands are about when none is given."
    )
    discord_bot_token: SecretStr | None = Field(
        None, description="Discord bot token (secret); the slash-command bot starts only when set."
    )
    notifier_bot_role_ids: str = Field(
        "", description="Discord role ids allowed to use the bot's commands, comma-separated (empty: nobody)."
    )
    notifier_bot_guild_id: int | None = Field(
        None, description="Guild to sync slash commands to at once (else global sync, which is slow)."
    )
    notifier_command_wait_s: float = Field(
        60.0, gt=0, description="How long the bot's /promote and /rollback wait for the gatekeeper's answer."
    )

    @property
    def state_file(self) -> Path:
        return self.notifier_state_file or self.state_dir / "notifier" / "deliveries.sqlite3"

    @property
    def mlflow_ui_url(self) -> str:
        return (self.notifier_mlflow_ui_url or self.mlflow_tracking_uri).rstrip("/")

    @property
    def digest_severities(self) -> frozenset[str]:
        return frozenset(s.strip() for s in self.notifier_digest_severities.split(",") if s.strip())

    @property
    def digest_alerts(self) -> frozenset[str]:
        return frozenset(s.strip() for s in self.notifier_digest_alerts.split(",") if s.strip())

    @property
    def bot_role_ids(self) -> frozenset[int]:
        return frozenset(int(s) for s in self.notifier_bot_role_ids.split(",") if s.strip())
