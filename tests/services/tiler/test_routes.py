"""How the tiler consumes ``fires.observed.v1``: bulk with a batch handler, else by its batch size."""

from __future__ import annotations

from emberwatch.contracts import Topic
from emberwatch.messaging.subscription import Delivery
from services.tiler.handlers import route
from services.tiler.settings import TilerSettings


async def one(event) -> None:  # noqa: ANN001
    return None


async def many(batch) -> None:  # noqa: ANN001
    return None


def delivery_of(s: TilerSettings, handle_many=None) -> Delivery:  # noqa: ANN001
    r = route(s, one, handle_many)
    assert r.topic == Topic.FIRES_OBSERVED and Topic.TILES_READY in r.publishes
    return r.delivery(Delivery.from_settings(s, service="tiler", group_id="g"))


def test_the_mode_and_the_batch_follow_the_settings(tmp_path):
    s = TilerSettings(state_dir=tmp_path, tiler_batch_size=16, kafka_batch_max_records=400)
    bulk = delivery_of(s, many)
    assert (bulk.mode, bulk.max_records, bulk.group_id) == ("bulk", 400, "g")
    concurrent = delivery_of(s)
    assert (concurrent.mode, concurrent.max_records) == ("concurrent", 16)
    ordered = delivery_of(s.model_copy(update={"tiler_batch_size": 1}), many)
    assert (ordered.mode, ordered.max_records) == ("ordered", 1)
