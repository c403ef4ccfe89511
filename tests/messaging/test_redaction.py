"""Publishing redacts every text field of every event: a Mapbox token, a Discord webhook and an AWS key
planted in every string of one event of each type (nested models, lists, dict keys and values) never
reach the topic, through ``publish_event`` and through ``publish_events``; the rest of the text does.
And the one-scan check that lets clean events through unchanged misses nothing ``redact`` would find."""

from __future__ import annotations

import json
import random
import string

import pytest
from pydantic import ValidationError

from emberwatch.common.logging import may_hold_secret, redact, redact_value
from emberwatch.contracts import PipelineAlert
from emberwatch.contracts.envelope import Envelope
from emberwatch.messaging.alerts import make_alert
from emberwatch.messaging.broker import build_broker, publish_event, publish_events, redacted
from tests.contracts.samples import sample_events
from tests.messaging.helpers import create_topic, read_all, unique

pytestmark = pytest.mark.timeout(120)

# What each planted string carries, and the part of each that must never be seen again.
TOKEN = "pk.eyJ1IjoiZW1iZXJ3YXRjaCJ9.Zm9vYmFyYmF6cXV4"
WEBHOOK = "https://discord.com/api/webhooks/112233445566/WeBhOoK-SeCrEt_tOkEn.x1"
AWS_KEY = "AKIAZXCVBNMASDFGHJKL"
PLANTS = (f"see {TOKEN} now", f"posted to {WEBHOOK}", f"\n{TOKEN}", f"key {AWS_KEY}")
NEVER = ("eyJ1IjoiZW1iZXJ3YXRjaCJ9", "WeBhOoK-SeCrEt_tOkEn", "ZXCVBNMASDFGHJKL")


def _paths(value, path=()):
    """Every string in a dumped event, by path (dict keys included, as ("key", k) steps)."""
    if isinstance(value, str):
        yield path
    elif isinstance(value, dict):
        for k, v in value.items():
            yield (*path, ("key", k))
            yield from _paths(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*path, i))


def _set(data, path, plant):
    """A copy of ``data`` with the string at ``path`` extended by ``plant``."""
    data = json.loads(json.dumps(data))
    *parents, last = path
    node = data
    for step in parents:
        node = node[step]
    if isinstance(last, tuple):  # a dict key
        node[f"{last[1]} {plant}"] = node.pop(last[1])
    else:
        node[last] = f"{node[last]} {plant}"
    return data


def planted(event: Envelope) -> tuple[Envelope, int]:
    """``event`` with a secret appended to every string the contract lets hold one, and how many."""
    data = event.model_dump(mode="json")
    count = 0
    paths = list(_paths(data))
    values = [p for p in paths if not isinstance(p[-1], tuple)]
    keys = [p for p in reversed(paths) if isinstance(p[-1], tuple)]  # children before their parents
    for i, path in enumerate(values + keys):
        if path in (("type",), ("event_id",)):
            continue  # the contract's own: the type is fixed, the id derived
        plant = f"#{i}# {PLANTS[i % len(PLANTS)]}"  # marked, to see that it was kept
        trial = _set(data, path, plant)
        try:
            kept = type(event).model_validate(trial)
        except ValidationError:
            continue  # a pattern (sha256 ids) or a closed set of values: no room for a secret
        if f"#{i}#" not in kept.to_bytes().decode():
            continue  # a model's field name renamed: the contract dropped it
        data, count = trial, count + 1
    return type(event).model_validate(data), count


EVENTS = sample_events() + [
    make_alert("test", "webhook_failed", "warning", "post failed",
               {"url": "x", "attempts": [1, {"why": "y"}], "nested": {"k": "v"}}),
]


def test_every_event_type_is_planted_in_several_text_fields():
    types = {type(e).__name__ for e in EVENTS}
    assert len(types) == 10  # every event type of the contracts
    for event in EVENTS:
        dirty, count = planted(event)
        assert count >= 3, type(event).__name__
        assert any(n in dirty.to_bytes().decode() for n in NEVER)


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: f"{type(e).__name__}-{getattr(e, 'alert', '')}")
def test_redacted_leaves_no_secret_in_the_body_or_key_and_keeps_the_rest(event):
    dirty, count = planted(event)
    clean, body = redacted(dirty)
    text = body.decode()
    for secret in NEVER:
        assert secret not in text and secret not in clean.key()
    assert json.loads(text)["event_id"] == dirty.event_id  # the same fact, the same id
    assert type(clean).from_bytes(body) == clean
    assert text.count("***") == count  # each planted string is there, its secret masked once
    assert "see pk.*** now" in text or "posted to https://discord.com/api/webhooks/112233445566/***" in text
    # clean events go as they are: the same object, the same bytes
    same, same_body = redacted(event)
    assert same is event and same_body == event.to_bytes()


async def test_no_planted_secret_reaches_the_topic(kafka_settings):
    """Every event type through the real broker, one by one and batched, routed to its own topic."""
    topic = unique("redaction")
    await create_topic(kafka_settings, topic)
    routed = []
    for event in EVENTS:
        dirty, _ = planted(event)
        model = type(f"Routed{type(event).__name__}", (type(event),), {"TOPIC": topic})
        routed.append(model.model_validate(dirty.model_dump()))
    broker = build_broker(kafka_settings, "redaction")
    await broker.start()
    try:
        for event in routed:
            await publish_event(broker, event, service="t")
        assert await publish_events(broker, routed, service="t") == len(routed)
    finally:
        await broker.stop()
    records = await read_all(kafka_settings.kafka_bootstrap_servers, topic, expect=2 * len(routed))
    assert len(records) == 2 * len(routed)
    seen_types = set()
    for record in records:
        raw = record.value + (record.key or b"") + b"".join(v for _, v in record.headers)
        for secret in NEVER:
            assert secret.encode() not in raw, json.loads(record.value)["type"]
        body = json.loads(record.value)
        seen_types.add(body["type"])
        assert "***" in record.value.decode()
    assert len(seen_types) == 10


def test_alert_details_are_redacted_when_made():
    alert = make_alert("svc", "a", "critical", f"failed: {WEBHOOK}",
                       {"url": WEBHOOK, "list": [TOKEN, {"deep": f"x password=hunter2 {AWS_KEY}"}], TOKEN: 1})
    text = alert.to_bytes().decode()
    for secret in (*NEVER, "hunter2"):
        assert secret not in text
    assert isinstance(alert, PipelineAlert) and alert.details["list"][1]["deep"].startswith("x password=***")


def test_the_one_scan_check_misses_nothing_redact_would_change():
    """may_hold_secret over an event's JSON is True whenever redact changes one of its strings,
    whatever JSON escapes around them (random strings built around the secrets, 3,000 of them)."""
    rng = random.Random(18)
    pieces = [TOKEN, WEBHOOK, AWS_KEY, "access_token=abc", "PassWord=x\\y", "Credential=AKID/2026",
              "/api/v10/webhooks/\u0661\u0662/tok", "pk.short", "sk.", "\n", "\t", '"', "\\", "\u00e9",
              "\x01", " ", "&", "'", "/", "pk", ".", "webhooks/1/", "pa\u017f\u017fword=z", "PK.ABCDEFGHIJ"]
    alphabet = string.ascii_letters + string.digits + "._-"
    misses = []
    for _ in range(3000):
        text = "".join(rng.choice(pieces) if rng.random() < 0.4 else rng.choice(alphabet)
                       for _ in range(rng.randint(1, 12)))
        event = PipelineAlert.create(producer="t", alert="a", severity="info", component="c",
                                     message=text, details={"k": [text]})
        if redact(text) != text and not may_hold_secret(event.to_bytes()):
            misses.append(text)
    assert misses == []
    assert not may_hold_secret(EVENTS[1].to_bytes())  # a clean TileReady: no false alarm
    assert redact_value({"a": ("x", TOKEN)}) == {"a": ("x", "pk.***")}
