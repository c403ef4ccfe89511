"""The fire-to-prediction latency: recorded for a fire's own tile, from when the fire was first seen."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client import REGISTRY

from emberwatch.contracts import TileReady
from services.gatekeeper.measure_latency import observe_fire_to_prediction

NOW = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)


def tile(label: str, seen: datetime | None) -> TileReady:
    return TileReady.create(producer="t", tile_id="a" * 64, uri=f"file:///t/aa/{'a' * 64}.jpg", lat=55.0, lon=-115.0,
                            zoom=15, size_px=350, label=label, split="test", fire_key="ab:1",
                            provider="mapbox-static", fire_observed_at=seen)


def count() -> float:
    return REGISTRY.get_sample_value("emberwatch_fire_to_prediction_seconds_count") or 0.0


def test_the_fires_own_tile_counts_from_when_the_fire_was_first_seen():
    before = count()
    le_10 = REGISTRY.get_sample_value("emberwatch_fire_to_prediction_seconds_bucket", {"le": "10.0"}) or 0
    assert observe_fire_to_prediction(tile("wildfire", NOW - timedelta(seconds=7.5)), now=NOW) == 7.5
    assert count() == before + 1
    assert REGISTRY.get_sample_value("emberwatch_fire_to_prediction_seconds_bucket", {"le": "10.0"}) == le_10 + 1


def test_matches_old_events_and_skewed_clocks_are_not_counted():
    before = count()
    assert observe_fire_to_prediction(tile("nowildfire", NOW - timedelta(seconds=3)), now=NOW) is None
    assert observe_fire_to_prediction(tile("wildfire", None), now=NOW) is None
    assert observe_fire_to_prediction(tile("wildfire", NOW + timedelta(seconds=2)), now=NOW) is None
    assert count() == before
