"""Logs and each service's /metrics endpoint."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ObservabilitySettings(BaseModel):
    metrics_host: str = Field("127.0.0.1", description="Address each service's /metrics binds to.")
    metrics_port: int | None = Field(
        None, description="Port of this service's /metrics (unset: the service's own default, "
        "EMBERWATCH_SERVICES_METRICS_BASE_PORT + its place; 0 = choose a free port)."
    )
    log_level: str = Field("INFO", description="Log level for structured logs on stderr.")
    log_format: str = Field("json", description="json (structured) or console.")
