"""Pure: when a champion's score on a live tile is a detection, and what the event carries."""

from __future__ import annotations

from datetime import UTC, datetime

from emberwatch.contracts.events import TileReady
from services.gatekeeper.core.detect_fire import detection_for

TILE = TileReady.create(producer="t", tile_id="cd" * 32, uri=f"file:///tiles/cd/{'cd' * 32}.png", lat=55.5, lon=-110.25, zoom=14,
                        size_px=32, label="nowildfire", split="test", fire_key="ab:F1", provider="p")


def detect(p: float, **kw):
    return detection_for(TILE, label="nowildfire", model_name="m", champion_version="3", wildfire_probability=p,
                         threshold=0.5, producer="gatekeeper", **kw)


def test_below_the_threshold_is_no_detection_and_at_it_is_one():
    assert detect(0.4999) is None
    d = detect(0.5)
    assert d is not None and d.tile_id == TILE.tile_id and d.trace_id == TILE.trace_id
    assert (d.lat, d.lon, d.fire_key, d.label, d.model_version) == (55.5, -110.25, "ab:F1", "nowildfire", "3")


def test_the_challengers_opinion_travels_with_it_and_a_rescore_has_the_same_id():
    d = detect(0.8, challenger_version="4", challenger_probability=0.2)
    assert (d.challenger_version, d.challenger_probability) == ("4", 0.2)
    assert detect(0.9).event_id == d.event_id  # the same tile and champion: one fact, posted once


def test_a_detection_says_the_product_of_its_tile():
    assert detect(0.9).product == "mapbox"
    swir = TILE.model_copy(update={"product": "sentinel2-swir"})
    d = detection_for(swir, label="wildfire", model_name="m-sentinel2-swir", champion_version="1",
                      wildfire_probability=0.9, threshold=0.5, producer="gatekeeper")
    assert d is not None and (d.product, d.model_name) == ("sentinel2-swir", "m-sentinel2-swir")


def test_a_detection_of_a_dated_tile_says_when_its_scene_was_sensed():
    assert detect(0.9).acquired_at is None  # an undated mosaic
    sensed = datetime(2026, 7, 3, 18, 42, tzinfo=UTC)
    dated = TILE.model_copy(update={"product": "sentinel2-swir", "acquired_at": sensed})
    d = detection_for(dated, label="wildfire", model_name="m-sentinel2-swir", champion_version="1",
                      wildfire_probability=0.9, threshold=0.5, producer="gatekeeper")
    assert d is not None and d.acquired_at == sensed
