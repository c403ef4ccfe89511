"""The console's own settings (``EMBERWATCH_CONSOLE_*``), on top of the common ones.

The basemap goes through the console with the common ``EMBERWATCH_MAPBOX_API_URL`` and
``EMBERWATCH_MAPBOX_TOKEN``: the token never reaches the browser. Predictions come from the common
``EMBERWATCH_TRITON_URL``, plots from ``EMBERWATCH_MLFLOW_TRACKING_URI``.
"""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator

from emberwatch.common.config import SERVICE_NAMES, Settings

SERVICE = "console"  # the service's name: logs, metrics, client ids, event producer


class ConsoleSettings(Settings):
    console_operator_token: SecretStr | None = Field(
        None, description="Operator token (secret): signing in with it allows commands and feedback; "
                          "unset, nobody can sign in and the console is read-only.")

    @property
    def signin_enabled(self) -> bool:
        """Operators can sign in only with a non-empty token; otherwise the console is read-only."""
        token = self.console_operator_token
        return token is not None and bool(token.get_secret_value())
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
