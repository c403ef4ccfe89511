"""Settings: env prefix, secrets hidden, logs redacted (their page, docs/configuration.md: tests/test_docs.py)."""

from __future__ import annotations

import json
import logging

from emberwatch.common.config import Settings
from emberwatch.common.logging import JsonFormatter, redact


def test_settings_come_from_prefixed_environment(monkeypatch):
    monkeypatch.setenv("EMBERWATCH_KAFKA_BOOTSTRAP_SERVERS", "a:1, b:2")
    monkeypatch.setenv("EMBERWATCH_MAPBOX_TOKEN", "pk.secretsecretsecret")
    s = Settings()
    assert s.kafka_servers == ["a:1", "b:2"]
    assert "secretsecret" not in repr(s) and "secretsecret" not in str(s.model_dump())


def test_logs_redact_tokens_and_webhooks():
    text = "POST https://discord.com/api/webhooks/123/abcDEF-token?wait=true access_token=pk.abcdefghijk"
    red = redact(text)
    assert "abcDEF-token" not in red and "abcdefghijk" not in red
    record = logging.makeLogRecord({"msg": "failed %s", "args": (text,), "levelno": 40,
                                    "levelname": "ERROR", "name": "x"})
    line = JsonFormatter().format(record)
    assert "abcDEF-token" not in line
    assert json.loads(line)["level"] == "error"


def test_local_addresses_follow_the_ports_unless_set(monkeypatch):
    monkeypatch.setenv("EMBERWATCH_MLFLOW_PORT", "5999")
    monkeypatch.setenv("EMBERWATCH_KAFKA_PORT", "19092")
    s = Settings()
    assert s.mlflow_tracking_uri == "http://127.0.0.1:5999"
    assert s.kafka_bootstrap_servers == "127.0.0.1:19092"
    monkeypatch.setenv("EMBERWATCH_MLFLOW_TRACKING_URI", "http://mlflow:5000")
    assert Settings().mlflow_tracking_uri == "http://mlflow:5000"
