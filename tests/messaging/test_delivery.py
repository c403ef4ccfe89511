"""``Delivery``: the one options object of ``subscribe``, and the pairing of ``handle_many`` with bulk."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from emberwatch.common.config import Settings
from emberwatch.contracts import PipelineAlert
from emberwatch.messaging.broker import build_broker
from emberwatch.messaging.subscription import Delivery, subscribe


async def handle(event: PipelineAlert) -> None:
    return None


async def handle_many(batch: list) -> None:
    return None


def test_from_settings_takes_the_kafka_limits_and_overrides():
    settings = SimpleNamespace(kafka_max_attempts=5, kafka_retry_backoff_s=0.25, kafka_session_timeout_ms=6000,
                               kafka_batch_max_records=123)
    d = Delivery.from_settings(settings, service="svc", group_id="g", mode="bulk", max_records=7)
    assert (d.service, d.group_id, d.mode) == ("svc", "g", "bulk")
    assert (d.max_attempts, d.backoff_s, d.session_timeout_ms, d.max_records) == (5, 0.25, 6000, 7)
    assert d.but(group_id="g-2").group_id == "g-2" and d.group_id == "g"


@pytest.mark.parametrize(("mode", "many"), [("bulk", None), ("ordered", handle_many), ("concurrent", handle_many)])
def test_handle_many_goes_with_bulk_and_only_with_bulk(mode, many):
    broker = build_broker(Settings(), "delivery")
    with pytest.raises(ValueError, match="handle_many"):
        subscribe(broker, "t", PipelineAlert, handle, Delivery(service="s", group_id="g", mode=mode),
                  handle_many=many)
    assert not broker.subscribers


@pytest.mark.parametrize("mode", ["ordered", "concurrent", "bulk"])
def test_each_mode_registers_one_batch_subscriber(mode):
    broker = build_broker(Settings(), "delivery")
    subscribe(broker, "t", PipelineAlert, handle, Delivery(service="s", group_id="g", mode=mode, max_records=9),
              handle_many=handle_many if mode == "bulk" else None)
    (subscriber,) = broker.subscribers
    assert subscriber.max_records == 9
