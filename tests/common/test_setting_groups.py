"""The common settings, grouped per concern in code, keep their flat names and their variables; the
services are named once."""

from __future__ import annotations

import typing

from pydantic import BaseModel

from emberwatch.cli.service_commands import ServiceName
from emberwatch.common import config
from emberwatch.common.config import Settings
from emberwatch.common.service_names import PIPELINE_SERVICES, SERVICES
from emberwatch.common.setting_groups.kafka import KafkaSettings
from emberwatch.common.setting_groups.tile_store import TileStoreSettings
from emberwatch.common.setting_groups.triton import TritonSettings
from emberwatch.stack import parts

GROUPS = [base for base in Settings.__mro__[1:]
          if issubclass(base, BaseModel) and base.__module__.startswith("emberwatch.common.setting_groups.")]


def test_settings_compose_one_class_per_concern_and_each_field_has_one_home():
    names = {g.__name__ for g in GROUPS}
    assert {"KafkaSettings", "MlflowSettings", "TritonSettings", "TileStoreSettings", "LocalStackSettings",
            "ObservabilitySettings", "OperatorSettings", "CoordinationSettings", "ExternalApiSettings"} <= names
    homes: dict[str, list[str]] = {}
    for group in GROUPS:
        for field in typing.get_type_hints(group, include_extras=False):
            homes.setdefault(field, []).append(group.__name__)
    assert {f: h for f, h in homes.items() if len(h) > 1} == {}
    grouped = set(homes)
    assert grouped <= set(Settings.model_fields)
    assert set(Settings.model_fields) - grouped == {"secrets_dir", "state_dir"}  # the process's own places
    assert "kafka_bootstrap_servers" in KafkaSettings.model_fields
    assert "s3_max_attempts" in TileStoreSettings.model_fields
    assert "triton_model_repository" in TritonSettings.model_fields


def test_flat_attribute_names_and_variables_are_kept(monkeypatch, tmp_path):
    monkeypatch.setenv("EMBERWATCH_KAFKA_BOOTSTRAP_SERVERS", "a:1,b:2")
    monkeypatch.setenv("EMBERWATCH_TRITON_URL", "triton:8000")
    monkeypatch.setenv("EMBERWATCH_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("EMBERWATCH_STATE_DIR", str(tmp_path))
    s = Settings()
    assert s.kafka_servers == ["a:1", "b:2"] and s.triton_url == "triton:8000" and s.log_level == "DEBUG"
    assert s.tile_root == tmp_path / "tiles" and s.triton_model_repository == tmp_path / "triton_models"


def test_the_groups_validators_still_refuse_at_start(monkeypatch):
    import pytest
    from pydantic import ValidationError

    monkeypatch.setenv("EMBERWATCH_TILE_STORE_URL", "http://not-a-bucket")
    with pytest.raises(ValidationError, match="EMBERWATCH_TILE_STORE_URL must be unset or s3://"):
        Settings()
    monkeypatch.delenv("EMBERWATCH_TILE_STORE_URL")
    monkeypatch.setenv("EMBERWATCH_TRITON_GRPC_TLS_CERT", "/tmp/cert.pem")
    with pytest.raises(ValidationError, match="go together"):
        Settings()
    monkeypatch.setenv("EMBERWATCH_TRITON_GRPC_TLS_CERT", " ")  # empty means unset, across groups
    assert Settings().triton_grpc_tls_cert is None


def test_the_services_are_named_once():
    assert SERVICES[:len(PIPELINE_SERVICES)] == PIPELINE_SERVICES and SERVICES[-1] == "console"
    assert [s.value for s in ServiceName] == list(SERVICES)
    assert parts.SERVICES == PIPELINE_SERVICES and config.SERVICE_NAMES == PIPELINE_SERVICES
    assert set(SERVICES) <= set(parts.PART_BUILDERS)
    s = Settings(services_metrics_base_port=9200)
    assert [s.service_metrics_port(n) for n in PIPELINE_SERVICES] == list(range(9200, 9200 + len(PIPELINE_SERVICES)))
