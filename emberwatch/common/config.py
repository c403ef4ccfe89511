"""Typed settings, read from ``EMBERWATCH_*`` environment variables (and an optional ``.env``), and
from files in a secrets directory (``EMBERWATCH_SECRETS_DIR``; compose and Kubernetes mount secrets
as files, so they never sit in a container's environment).

The common settings are grouped by concern, one class each in ``emberwatch/common/setting_groups/``
(Kafka, the external APIs, coordination, the tile store, operators, MLflow, Triton, the local stack,
observability); ``Settings`` composes them, so every setting keeps its flat name
(``settings.kafka_bootstrap_servers``) and its variable (``EMBERWATCH_KAFKA_BOOTSTRAP_SERVERS``). Each
service adds its own in ``services/<name>/settings.py``. docs/configuration.md lists them all (generated
by ``emberwatch config --write-docs``). Defaults point at the real public services where they exist and
at the local stack's addresses for the parts the stack runs. A variable no settings class declares is
refused at start (``emberwatch/common/unknown_settings.py``).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SecretsSettingsSource, SettingsConfigDict

from emberwatch.common.repo import REPO_ROOT
from emberwatch.common.service_names import PIPELINE_SERVICES
from emberwatch.common.setting_groups.coordination import CoordinationSettings
from emberwatch.common.setting_groups.external_apis import ExternalApiSettings
from emberwatch.common.setting_groups.kafka import KafkaSettings
from emberwatch.common.setting_groups.local_stack import LocalStackSettings
from emberwatch.common.setting_groups.mlflow import MlflowSettings
from emberwatch.common.setting_groups.observability import ObservabilitySettings
from emberwatch.common.setting_groups.operators import OperatorSettings
from emberwatch.common.setting_groups.tile_store import TileStoreSettings
from emberwatch.common.setting_groups.triton import TritonSettings

__all__ = ["REPO_ROOT", "SERVICE_NAMES", "Settings", "get_settings", "narrow", "secrets_dir"]

# The services with a /metrics port of their own, in the order their ports follow
# EMBERWATCH_SERVICES_METRICS_BASE_PORT (emberwatch/common/service_names.py names every service once).
SERVICE_NAMES = PIPELINE_SERVICES
# Where compose and Docker mount secrets: the secrets directory when EMBERWATCH_SECRETS_DIR is unset.
DEFAULT_SECRETS_DIR = Path("/run/secrets")


def secrets_dir() -> Path | None:
    """The directory secret files are read from: ``EMBERWATCH_SECRETS_DIR`` (empty: none; a directory
    that does not exist is refused), else ``/run/secrets`` when it exists, else none."""
    value = os.environ.get("EMBERWATCH_SECRETS_DIR")
    if value is None:
        return DEFAULT_SECRETS_DIR if DEFAULT_SECRETS_DIR.is_dir() else None
    if not value.strip():
        return None
    path = Path(value.strip())
    if not path.is_dir():
        raise ValueError(f"EMBERWATCH_SECRETS_DIR={value!r} is not a directory")
    return path


class Settings(ObservabilitySettings, LocalStackSettings, TritonSettings, MlflowSettings, OperatorSettings,
               TileStoreSettings, CoordinationSettings, ExternalApiSettings, KafkaSettings, BaseSettings):
    """Every common setting: the groups, composed (listed last to first: pydantic orders the fields of the
    last base first), plus where state and secrets are kept."""

    model_config = SettingsConfigDict(
        env_prefix="EMBERWATCH_", env_file=".env", extra="ignore", secrets_dir=None
    )

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then the environment, then ``.env``, then the secrets directory's files (each
        named after its variable, e.g. ``EMBERWATCH_MAPBOX_TOKEN``; case does not matter)."""
        return (init_settings, env_settings, dotenv_settings,
                SecretsSettingsSource(settings_cls, secrets_dir=secrets_dir()))

    secrets_dir: Path | None = Field(
        None, description="Directory of secret files, one per setting, named after its variable (e.g. "
                          "EMBERWATCH_MAPBOX_TOKEN; compose and Kubernetes secrets), read after the "
                          "environment and .env. Unset: /run/secrets when it exists; empty: none. Only "
                          "from the environment.")

    state_dir: Path = Field(
        REPO_ROOT / ".state", description="Where the stack keeps state, logs and PID files."
    )

    @field_validator("tile_store_url", "s3_endpoint_url", "s3_region", "secrets_dir", "triton_grpc_tls_ca",
                     "triton_grpc_tls_cert", "triton_grpc_tls_key", "console_operators_file", mode="before")
    @classmethod
    def _empty_means_unset(cls, value: object) -> object:
        """An empty variable (as an optional Kubernetes Secret key can leave) means unset."""
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _local_addresses_follow_ports(self) -> Settings:
        """Unless set explicitly, the local stack's addresses follow its ports (EMBERWATCH_*_PORT)."""
        derived = {
            "kafka_bootstrap_servers": f"{self.stack_host}:{self.kafka_port}",
            "mlflow_tracking_uri": f"http://{self.stack_host}:{self.mlflow_port}",
            "triton_url": f"{self.stack_host}:{self.triton_http_port}",
            "triton_grpc_url": f"{self.stack_host}:{self.triton_grpc_port}",
            "triton_model_repository": Path(self.state_dir) / "triton_models",
            "secrets_dir": secrets_dir(),  # the directory the files were read from
        }
        for name, value in derived.items():
            if name not in self.model_fields_set:
                object.__setattr__(self, name, value)
        return self

    @property
    def tile_root(self) -> Path:
        """The local tile store's directory: EMBERWATCH_TILER_TILE_ROOT, else <state_dir>/tiles."""
        return self.tiler_tile_root or (self.state_dir / "tiles")

    def service_metrics_port(self, service: str) -> int:
        """The /metrics port of ``service``: EMBERWATCH_METRICS_PORT when set, else its own default."""
        if self.metrics_port is not None:
            return self.metrics_port
        if service not in SERVICE_NAMES:
            raise ValueError(f"unknown service {service!r}; known: {', '.join(SERVICE_NAMES)}")
        return self.services_metrics_base_port + SERVICE_NAMES.index(service)


S = TypeVar("S", bound=Settings)


def narrow(settings: Settings | None, cls: type[S]) -> S:
    """The service's own typed settings (``cls``) from the common ones: the same values, plus the
    service's fields from the environment. Every service narrows its settings this one way."""
    if settings is None:
        return cls()
    if isinstance(settings, cls):
        return settings
    return cls(**settings.model_dump(exclude_unset=False))


@lru_cache
def get_settings() -> Settings:
    return Settings()
