"""The redactor catches each shape of secret that reaches a log line, an exception or an event: a
table of realistic samples, each redacted by ``redact``, in a JSON log line, in an alert published
through ``redacted`` (flagged by the one-scan check first); and values that are not secrets (tile
ids, fire keys, run ids, URIs without a password) stay as they are, without a false alarm."""

from __future__ import annotations

import json
import logging
import random
import string

import pytest

from emberwatch.common.logging import (
    SECRET_SHAPES,
    ConsoleFormatter,
    JsonFormatter,
    may_hold_secret,
    redact,
    redact_value,
)
from emberwatch.common.triton_client import ADMIN_HEADER
from emberwatch.contracts import PipelineAlert
from emberwatch.messaging.broker import redacted

BOT_TOKEN = "MTA4NzY1NDMyMTA5ODc2NTQzMg.GaBcDe.q7Xw9Zr2LkP0vN3mB8sT1uY6hJ4fD5gA"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

# (what it is, the text, the part of it that must never be seen again)
SAMPLES = [
    ("discord bot token", f"login failed for {BOT_TOKEN}", "q7Xw9Zr2LkP0vN3mB8sT1uY6hJ4fD5gA"),
    ("discord bot token, first", f"{BOT_TOKEN} rejected", "GaBcDe.q7Xw9"),
    ("discord webhook", "POST https://discord.com/api/webhooks/1122334455/AbC-dEf_gHi.jKl?wait=true", "AbC-dEf_gHi"),
    ("postgresql url", "connect to postgresql://mlflow:Pg-S3cret!x@db:5432/mlflow failed", "Pg-S3cret!x"),
    ("https url", "GET https://ops:hunter2@mlflow.internal/api/2.0 (401)", "hunter2"),
    ("amqp url", "broker amqp://guest:Gu3stPass@rabbit:5672/vhost", "Gu3stPass"),
    ("json password", '{"user": "ops", "password": "correct horse battery staple"}', "horse battery"),
    ("yaml passwd", "db:\n  passwd: tr0ub4dor&3\n  host: db", "tr0ub4dor"),
    ("key=value secret", "client_secret=9f8e7d6c5b4a&grant=x", "9f8e7d6c5b4a"),
    ("env token", "EMBERWATCH_DISCORD_BOT_TOKEN=zz-bot-tok-991", "zz-bot-tok-991"),
    ("json api key", "{'api_key': 'k-5512-aa90'}", "k-5512-aa90"),
    ("aws secret, env", f"aws_secret_access_key = {AWS_SECRET}", AWS_SECRET),
    ("aws secret, label", f"Secret Access Key    {AWS_SECRET}", AWS_SECRET),
    ("aws secret, json", f'"SecretAccessKey": "{AWS_SECRET}"', AWS_SECRET),
    ("aws access key id", "using access key AKIAIOSFODNN7EXAMPLE", "IOSFODNN7EXAMPLE"),
    ("aws access_key field", "access_key: 'minio-access-1234'", "minio-access-1234"),
    ("signed request", "Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261207/us-east-1", "AKIDEXAMPLE"),
    ("authorization bearer", "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl", "eyJhbGciOiJIUzI1NiJ9"),
    ("bearer, lowercase", "retry with bearer op-7c2e91d04b5a", "op-7c2e91d04b5a"),
    ("basic auth header", "{'authorization': 'Basic dXNlcjpwYXNz'}", "dXNlcjpwYXNz"),
    ("triton admin header", f"{ADMIN_HEADER}: a81f3e2c9d70b4", "a81f3e2c9d70b4"),
    ("triton grpc admin header", f"triton-grpc-protocol-{ADMIN_HEADER}=a81f3e2c9d70b4", "a81f3e2c9d70b4"),
    ("mapbox public token", "tiles?access_token=pk.eyJ1IjoiZW1iZXIifQ.Zm9vYmFy", "eyJ1IjoiZW1iZXIifQ"),
    ("mapbox secret token", "token sk.eyJ1IjoiZW1iZXIifQ.c2VjcmV0 loaded", "eyJ1IjoiZW1iZXIifQ"),
    ("mlflow password env", "EMBERWATCH_MLFLOW_TRACKING_PASSWORD=Ml-fl0w-pw", "Ml-fl0w-pw"),
]
SHA = "6105d6cc76af400325e94d588ce511be5bfdbb73b437dc51eca43917d7a43e3d"
NEGATIVES = [
    f"tile {SHA} ready",
    f"s3://emberwatch-tiles/tiles/61/{SHA}.jpg",
    f"file:///var/lib/emberwatch/tiles/61/{SHA}.jpg",
    "fire bc:G80123 (BC, out of control), fire_key=bc:G80123",
    "run 0a1b2c3d4e5f60718293a4b5c6d7e8f9 logged to models:/wildfire-detector/12",
    "https://cwfis.cfs.nrcan.gc.ca/downloads/activefires/activefires.csv",
    "ops@example.org asked for version 3.1.4 at 2026-12-07T10:26:35.486Z",
    '{"lat": 50.1, "lon": -120.3, "zoom": 15, "fire_key": "bc:G80123", "token_count": 4}',
    "runs:/0a1b2c3d4e5f60718293a4b5c6d7e8f9/model.onnx p=0.93 threshold=0.5",
]


def test_the_table_covers_every_shape_and_twelve_samples():
    assert len(SAMPLES) >= 12
    hit = {shape.name for _, text, _ in SAMPLES for shape in SECRET_SHAPES if shape.pattern.search(text)}
    assert hit == {shape.name for shape in SECRET_SHAPES}


@pytest.mark.parametrize(("text", "secret"), [s[1:] for s in SAMPLES], ids=[s[0] for s in SAMPLES])
def test_each_secret_shape_is_redacted(text, secret):
    assert secret in text
    clean = redact(text)
    assert secret not in clean and "***" in clean
    assert redact(clean) == clean  # masked once: nothing left that looks like a secret


@pytest.mark.parametrize(("text", "secret"), [s[1:] for s in SAMPLES], ids=[s[0] for s in SAMPLES])
def test_each_secret_is_flagged_and_masked_in_a_published_event(text, secret):
    alert = PipelineAlert.create(producer="t", alert="a", severity="info", component="c",
                                 message=f"x {text}", details={"nested": [text], text: 1})
    assert may_hold_secret(alert.to_bytes())  # JSON-encoded: quotes and newlines escaped
    clean, body = redacted(alert)
    assert secret.encode() not in body
    assert clean.message.startswith("x ")


@pytest.mark.parametrize(("text", "secret"), [s[1:] for s in SAMPLES], ids=[s[0] for s in SAMPLES])
def test_each_secret_is_redacted_in_log_lines(text, secret):
    record = logging.makeLogRecord({"msg": "failed: %s", "args": (text,), "levelno": 40,
                                    "levelname": "ERROR", "name": "x", "detail": {"why": text}})
    line = JsonFormatter().format(record)
    entry = json.loads(line)  # still one JSON object: masking happens before the escapes
    assert secret not in line and entry["msg"].startswith("failed: ")
    assert secret not in ConsoleFormatter().format(record)


@pytest.mark.parametrize("text", NEGATIVES)
def test_what_is_not_a_secret_stays(text):
    assert redact(text) == text
    alert = PipelineAlert.create(producer="t", alert="a", severity="info", component="c",
                                 message=text, details={"k": text})
    assert not may_hold_secret(alert.to_bytes())  # no false alarm: the event goes as it is
    assert redacted(alert)[0] is alert


def test_secret_named_keys_mask_their_values():
    value = {"password": "hunter2", "aws_secret_access_key": AWS_SECRET, ADMIN_HEADER: "a81f",
             "nested": [{"bot_token": "zzz", "token_count": 3, "fire_key": "bc:G1"}], "enabled": True}
    assert redact_value(value) == {"password": "***", "aws_secret_access_key": "***", ADMIN_HEADER: "***",
                                   "nested": [{"bot_token": "***", "token_count": 3, "fire_key": "bc:G1"}],
                                   "enabled": True}
    record = logging.makeLogRecord({"msg": "connecting", "levelname": "INFO", "name": "x",
                                    "password": "hunter2", "headers": {ADMIN_HEADER: "a81f3e"}})
    line = JsonFormatter().format(record)
    assert "hunter2" not in line and "a81f3e" not in line
    alert = PipelineAlert.create(producer="t", alert="a", severity="info", component="c", message="m",
                                 details={"request": {"api_key": "k-998877"}})
    assert may_hold_secret(alert.to_bytes())
    assert b"k-998877" not in redacted(alert)[1]


def test_the_one_scan_check_misses_no_new_shape():
    """may_hold_secret over an event's JSON is True whenever redact changes one of its strings, for
    random strings built from pieces of every shape (and JSON's escapes around them)."""
    rng = random.Random(32)
    pieces = [BOT_TOKEN, "MTA4NzY1NDMyMTA5ODc2NTQzMg", ".GaBcDe.", AWS_SECRET, "postgresql://", "u:", "p@",
              "://a:b@h", '"password"', "PASSWORD", ": ", "=", "'", '"', "\t", "\n", "\\", "token", "Token=",
              "secret_access_key", "Secret Access Key ", "bearer ", "Bearer\t", "Authorization:", ADMIN_HEADER,
              "-admin-key", "api_key", "API KEY", "AKIA", "IOSFODNN7EXAMPLE", "\u00e9", "\u212a", "\u0130", " "]
    alphabet = string.ascii_letters + string.digits + "._-/+"
    misses = []
    for _ in range(4000):
        text = "".join(rng.choice(pieces) if rng.random() < 0.45 else rng.choice(alphabet)
                       for _ in range(rng.randint(1, 14)))
        event = PipelineAlert.create(producer="t", alert="a", severity="info", component="c",
                                     message=text, details={"k": [text]})
        if redact(text) != text and not may_hold_secret(event.to_bytes()):
            misses.append(text)
    assert misses == []
