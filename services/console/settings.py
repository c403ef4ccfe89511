"""The console's own settings (``EMBERWATCH_CONSOLE_*``), on top of the common ones.

The basemap goes through the console with the common ``EMBERWATCH_MAPBOX_API_URL`` and
``EMBERWATCH_MAPBOX_TOKEN``: the token never reaches the browser. Predictions come from the common
``EMBERWATCH_TRITON_URL``, plots from ``EMBERWATCH_MLFLOW_TRACKING_URI``.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from emberwatch.common.config import SERVICE_NAMES, Settings
from emberwatch.security.console_operators import LEGACY_OPERATOR, OperatorRegistry, operators_path

SERVICE = "console"  # the service's name: logs, metrics, client ids, event producer


class ConsoleSettings(Settings):
    console_operator_token: SecretStr | None = Field(
        None, description="Legacy shared operator token (secret): signing in with it names the operator "
                          f"`{LEGACY_OPERATOR}`, whoever types it. Prefer named operators "
                          "(EMBERWATCH_CONSOLE_OPERATORS_FILE); unset and without operators the console is "
                          "read-only.")
    console_public_url: str | None = Field(
        None, description="The console's origin as browsers reach it (e.g. https://console.example.org behind "
                          "a proxy): writes must come from it (Origin), and cookies are Secure when it is "
                          "https. Unset: the origin the request was addressed to.")
    console_trusted_proxies: str = Field(
        "", description="Comma-separated addresses of reverse proxies whose X-Forwarded-For/-Proto the console "
                        "believes (the client address for throttling, the scheme); empty: none.")
    console_max_body_bytes: int = Field(
        65536, ge=1024, le=16 * 1024 * 1024,
        description="Largest request body the console reads; a bigger one is answered 413 before it is read.")
    console_signin_failures_per_minute: int = Field(
        5, ge=1, description="Failed sign-ins a client address may make in a minute; then 429 with Retry-After.")
    console_basemap_requests_per_minute: int = Field(
        600, ge=1, description="Basemap tiles one client address may request from the console's proxy in a "
                               "minute (then 429); the proxy also answers only the console's own pages.")
    console_basemap_cache_mib: int = Field(
        64, ge=0, description="Memory for basemap tiles already fetched (an hour each), so that the Mapbox "
                              "token is spent once per tile; 0: no cache.")

    @field_validator("console_public_url", mode="before")
    @classmethod
    def _empty_means_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("console_public_url")
    @classmethod
    def _public_url_is_an_origin(cls, value: str | None) -> str | None:
        """An origin: http(s)://host[:port] with no path, as a browser sends it in Origin."""
        if value is None:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path.strip("/") \
                or parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError(f"EMBERWATCH_CONSOLE_PUBLIC_URL={value!r} must be an origin: http(s)://host[:port]")
        return f"{parts.scheme}://{parts.netloc.lower()}"

    @property
    def signin_enabled(self) -> bool:
        """Operators can sign in with a named operator's secret or the legacy token; else read-only."""
        token = self.console_operator_token
        legacy = token is not None and bool(token.get_secret_value())
        return legacy or bool(OperatorRegistry(self.operators_path).names())

    @property
    def operators_path(self) -> Path:
        """Where the named operators are kept (see ``console_operators_file``)."""
        return operators_path(self)

    console_model_name: str = Field(
        "emberwatch-resnet50", description="Registered model the console's commands are about.")
    console_command_wait_s: float = Field(
        120.0, gt=0, description="A console command expires this long after it is sent.")
    console_basemap_tileset: str = Field(
        "mapbox.satellite", description="Mapbox raster tileset the console's basemap proxy serves.")
    console_basemap_min_zoom: int = Field(
        13, ge=0, le=22, description="Map zoom from which the basemap is shown (below: a plain background). "
                                     "The Mapbox simulator draws low-zoom tiles too slowly to serve them.")
    console_session_max_age_s: int = Field(
        43200, gt=0, description="How long a console sign-in lasts (cookie and server session).")
    console_predictions: bool = Field(
        True, description="Score every tile with the champion (and the challenger during a shadow) through "
                          "Triton's wildfire model, for the map's predictions and filters.")
    console_predict_batch: int = Field(8, ge=1, le=64, description="Tiles per Triton request when scoring.")
    console_triton_timeout_s: float = Field(30.0, gt=0, description="Timeout of one Triton request.")
    console_gatekeeper_metrics_url: str | None = Field(
        None, description="The gatekeeper's /metrics, where the shadow's progress is read (default: "
                          "http://EMBERWATCH_METRICS_HOST:<the gatekeeper's default metrics port>/metrics).")
    console_mlflow_ui_url: str | None = Field(
        None, description="MLflow's web UI as the operators' browsers reach it, for links (default: "
                          "EMBERWATCH_MLFLOW_TRACKING_URI).")

    @model_validator(mode="after")
    def _defaults_follow_the_stack(self) -> ConsoleSettings:
        if "console_gatekeeper_metrics_url" not in self.model_fields_set:
            port = self.services_metrics_base_port + SERVICE_NAMES.index("gatekeeper")
            object.__setattr__(self, "console_gatekeeper_metrics_url", f"http://{self.metrics_host}:{port}/metrics")
        if not self.console_mlflow_ui_url:
            object.__setattr__(self, "console_mlflow_ui_url", self.mlflow_tracking_uri)
        return self
