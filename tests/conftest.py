"""Shared fixtures: real local components on ports chosen at run time, cleaned up by process group."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from emberwatch.common.config import Settings
from emberwatch.common.telemetry import free_port
from emberwatch.stack import manage

REPO = Path(__file__).resolve().parents[1]


def stack_settings(state_dir: Path, parts: str, **overrides) -> Settings:
    """Settings for a private stack: every port free right now, state under ``state_dir``."""
    ports = {
        "kafka_port": free_port(), "mlflow_port": free_port(), "triton_http_port": free_port(),
        "triton_grpc_port": free_port(), "triton_metrics_port": free_port(),
        "prometheus_port": free_port(),
    }
    ports.update(overrides)
    s = Settings(state_dir=state_dir, stack_parts=parts, **ports)
    return s.model_copy(update={
        "kafka_bootstrap_servers": f"127.0.0.1:{s.kafka_port}",
        "mlflow_tracking_uri": f"http://127.0.0.1:{s.mlflow_port}",
        "triton_url": f"127.0.0.1:{s.triton_http_port}",
        "triton_grpc_url": f"127.0.0.1:{s.triton_grpc_port}",
        "kafka_session_timeout_ms": 6000,
    })


@contextmanager
def running_stack(state_dir: Path, parts: str, **overrides) -> Iterator[Settings]:
    """The local stack's ``parts`` up for the duration of the block (stopped however it ends);
    ``overrides`` as ``stack_settings`` takes them."""
    settings = stack_settings(state_dir, parts, **overrides)
    manage.up(settings)
    try:
        yield settings
    finally:
        manage.down(settings)


@pytest.fixture(scope="session")
def kafka_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A real Kafka-protocol broker (Tansu) for the whole session."""
    with running_stack(tmp_path_factory.mktemp("kafka-stack"), "kafka") as settings:
        yield settings


def env_for(settings: Settings) -> dict[str, str]:
    """Environment that makes a child process use ``settings``."""
    env = dict(os.environ)
    env.update({
        "EMBERWATCH_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "EMBERWATCH_STATE_DIR": str(settings.state_dir),
        "EMBERWATCH_KAFKA_SESSION_TIMEOUT_MS": str(settings.kafka_session_timeout_ms),
        "EMBERWATCH_MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
        "EMBERWATCH_TRITON_URL": settings.triton_url,
        "EMBERWATCH_TRITON_GRPC_URL": settings.triton_grpc_url,
    })
    return env


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL (Debian's) for the whole session: the coordination database of a cluster."""
    from tests.support.postgres import running_postgres

    with running_postgres() as url:
        yield url


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3 API (moto's standalone server, over HTTP) for the whole session: the tile store of a
    cluster."""
    from tests.support.moto_s3 import running_moto_s3

    with running_moto_s3() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def coordination(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The coordination database's URL on each dialect it supports: SQLite under ``tmp_path`` (one
    host) and the session's real PostgreSQL (a cluster)."""
    from pydantic import SecretStr

    from emberwatch.common.coordination import coordination_url

    if request.param == "sqlite":
        return coordination_url(Settings(state_dir=tmp_path))
    return coordination_url(Settings(coordination_url=SecretStr(request.getfixturevalue("postgres_url"))))
