"""The Sentinel-2 line's pure parts: which images a pair announces, how long an outage waits, the catalogue
the settings describe, and the durable list of fires waiting for a clear scene (SQLite)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
from affine import Affine

from emberwatch.common.coordination import open_coordination
from services.tiler.sentinel2.composites import composite
from services.tiler.sentinel2.pairing import GiveUp
from services.tiler.sentinel2.provider import PairResult, Sentinel2Tile
from services.tiler.sentinel2.scenes import Scene
from services.tiler.sentinel2.search import KNOWN_ASSET_HOSTS, PLANETARY_COMPUTER_URL
from services.tiler.sentinel2_line import (
    FeedClock,
    catalogue_from,
    outage_wait,
    pair_tiles,
    policy_from,
    rate_limited,
    retry_after_of,
)
from services.tiler.sentinel2_pending import GIVEN_UP, MADE, PENDING, Sentinel2Fires
from services.tiler.settings import TilerSettings

T0 = datetime(2026, 7, 10, tzinfo=UTC)


def _tile(scene_id: str) -> Sentinel2Tile:
    bands = {b: np.full((4, 4), 0.1, np.float32) for b in ("red", "green", "blue", "nir08", "swir22")}
    grid = Affine(10, 0, 500000, 0, -10, 5600000)
    scene = Scene(scene_id, "sentinel-2-c1-l2a", T0, T0, 1.0, {})
    return Sentinel2Tile(scene, 0.0, composite("true-colour", bands, "EPSG:32610", grid),
                         composite("swir", bands, "EPSG:32610", grid), bytes_read=1000)


def test_a_pair_announces_the_fire_tiles_as_wildfire_and_the_control_as_nowildfire() -> None:
    result = PairResult(decision=GiveUp("unused"), post=_tile("post"), pre=_tile("pre"))
    tiles = pair_tiles(result)
    assert [(t.slot, t.label, t.is_fire_tile, t.tile.scene.scene_id) for t in tiles] == [
        ("s2-fire-swir", "wildfire", True, "post"), ("s2-fire-true-colour", "wildfire", True, "post"),
        ("s2-control-swir", "nowildfire", False, "pre"), ("s2-control-true-colour", "nowildfire", False, "pre")]
    assert [t.image.kind for t in tiles] == ["swir", "true-colour", "swir", "true-colour"]
    no_control = pair_tiles(PairResult(decision=GiveUp("unused"), post=_tile("post")))
    assert [t.slot for t in no_control] == ["s2-fire-swir", "s2-fire-true-colour"]


def test_an_outage_waits_longer_each_time_honours_retry_after_and_is_capped() -> None:
    waits = [outage_wait(n, None, first_s=5, max_s=60) for n in (1, 2, 3, 4, 5)]
    assert waits == [5, 10, 20, 40, 60]
    assert outage_wait(1, 30.0, first_s=5, max_s=60) == 30.0
    assert outage_wait(1, 3600.0, first_s=5, max_s=60) == 60


def test_retry_after_and_rate_limits_are_read_from_the_error() -> None:
    class Limited(Exception):
        retry_after = 12
        status_code = 429

    assert retry_after_of(Limited()) == 12.0 and rate_limited(Limited())
    assert retry_after_of(RuntimeError("boom")) is None and not rate_limited(RuntimeError("503 Service Unavailable"))


def test_the_settings_describe_the_catalogue_and_the_policy() -> None:
    s = TilerSettings(tiler_sentinel2_stac_url="http://127.0.0.1:8084/", tiler_sentinel2_asset_hosts=" cogs.example, ",
                      tiler_sentinel2_give_up_days=3, tiler_sentinel2_retry_hours=6)
    catalogue = catalogue_from(s)
    assert catalogue.url == "http://127.0.0.1:8084" and catalogue.asset_hosts == (*KNOWN_ASSET_HOSTS, "cogs.example")
    policy = policy_from(s)
    assert policy.give_up_after == timedelta(days=3) and policy.retry_every == timedelta(hours=6)
    pc = catalogue_from(TilerSettings(tiler_sentinel2_planetary_computer=True))
    assert pc.url == PLANETARY_COMPUTER_URL and pc.modifier is not None


def test_the_feed_clock_is_the_latest_snapshot_seen() -> None:
    clock = FeedClock()
    clock.observe(T0 + timedelta(hours=5))
    clock.observe(T0)
    assert clock() == T0 + timedelta(hours=5)


class Wall:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_pending_fires_are_claimed_when_due_once_and_never_added_twice(tmp_path) -> None:
    wall = Wall()
    fires = Sentinel2Fires(open_coordination(f"sqlite:///{tmp_path / 'c.db'}"), clock_wall=wall)
    assert fires.add("a", 50.1, -120.3, T0, "trace-a", None, due_at=T0)
    assert not fires.add("a", 50.1, -120.3, T0, "trace-a", None, due_at=T0 + timedelta(days=9))  # a replay
    assert fires.add("b", 51.0, -121.0, T0, "trace-b", None, due_at=T0 + timedelta(hours=12))
    [a] = fires.claim_due(T0, limit=10, lease_s=60)
    assert (a.fire_key, a.start, a.end) == ("a", T0, None)
    assert fires.claim_due(T0, limit=10, lease_s=60) == []  # leased: no second claim
    fires.retry_at("a", T0 + timedelta(hours=12), "none clear")
    assert [p.fire_key for p in fires.claim_due(T0 + timedelta(hours=12), limit=10, lease_s=60)] == ["a", "b"]
    fires.outage("a", 30.0, "ConnectError")
    fires.ended("b", T0 + timedelta(days=1))
    wall.now += 31
    again = fires.claim_due(T0 + timedelta(hours=12), limit=10, lease_s=60)
    assert [(p.fire_key, p.outages, p.searches) for p in again] == [("a", 1, 1)]
    fires.made("a")
    fires.give_up("b", "no clear scene")
    assert fires.state("a") == (MADE, None) and fires.state("b") == (GIVEN_UP, "no clear scene")
    assert fires.count(PENDING) == 0 and fires.claim_due(T0 + timedelta(days=30), limit=10, lease_s=60) == []
    assert fires.latest_start() == T0
