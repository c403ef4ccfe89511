"""Negatives that could be fires, end to end: real broker, real HTTP to the Mapbox simulator.

Land-cover matching (water and mismatched candidates rejected, places reused on replay without a
context request), later fires relabelling or retiring announced negatives (one event each, none again
on replay), and the split settings pinned in the state."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from emberwatch.common.geo import destination, haversine_km
from emberwatch.contracts import FireObserved, TileRelabelled
from services.tiler.fetch_tile import FetchConfig, TileFetcher
from services.tiler.main import build_tiler
from services.tiler.mapbox_client import ClientConfig, MapboxClient, TokenSource
from services.tiler.match_land_cover import judge, land_cover
from services.tiler.pin_split import SplitSettingsChanged
from services.tiler.sample_negatives import candidate_places, sample_negatives
from tests.messaging.helpers import read_all, wait_for
from tests.services.tiler.harness import fire, metric, running_tiler, tiler_settings
from tests.services.tiler.test_tiler import sim, token_file  # noqa: F401 - fixtures

pytestmark = pytest.mark.timeout(180)


async def _verdicts(url: str, token_path, lat: float, lon: float, key: str, s) -> list[tuple[str, tuple]]:
    """What the tiler will judge of the fire's candidates, from the same context images."""
    client = MapboxClient(ClientConfig(base_url=url), TokenSource(None, token_path))
    fetcher = TileFetcher(client, FetchConfig())
    scale = s.tiler_size_px / 2 ** (s.tiler_zoom - s.tiler_context_zoom)
    footprint = scale / s.tiler_context_size_px
    try:
        fire_image = await fetcher.fetch_context(lat, lon, s.tiler_fire_context_size_px)
        fire_cover = land_cover(np.asarray(fire_image), scale / s.tiler_fire_context_size_px)
        out = []
        for place in candidate_places(key, lat, lon, near_fire=lambda a, b, km: haversine_km(a, b, lat, lon) < km,
                                      exclusion_km=s.tiler_negative_exclusion_km):
            cover = land_cover(np.asarray(await fetcher.fetch_context(*place)), footprint)
            v = judge(fire_cover, cover, tolerance=s.tiler_negative_cover_tolerance,
                      max_water=s.tiler_negative_max_water)
            out.append((v.reason, place))
            if v.accepted or len(out) == s.tiler_negative_cover_tries:
                return out
        return out
    finally:
        await client.aclose()


async def test_water_and_other_cover_are_rejected_and_a_replay_fetches_no_context(kafka_settings, tmp_path,
                                                                                   sim, token_file):  # noqa: F811
    url, state = sim
    s = tiler_settings(kafka_settings, tmp_path / "state", url, token_file, tiler_negatives_per_fire=1)
    # A fire whose candidates meet a lake and a different cover before one that matches.
    found = None
    for i in range(80):
        lat, lon = 50.0 + (i % 8) * 0.7, -122.0 + (i // 8) * 2.3
        verdicts = await _verdicts(url, token_file, lat, lon, f"ab:{i}", s)
        reasons = [r for r, _ in verdicts]
        if "water" in reasons and "cover" in reasons and reasons[-1] == "matched":
            found = (f"ab:{i}", lat, lon, verdicts)
            break
    assert found, "no simulated place with a lake and another cover among its candidates"
    key, lat, lon, verdicts = found
    state.by_api.clear()
    state.by_status.clear()
    before = {r: metric("emberwatch_tiler_negative_candidates_total", verdict=r) for r in ("water", "cover")}
    async with running_tiler(s) as run:
        await run.send(fire(key, lat, lon))
        tiles = await run.tiles(2)
        await wait_for(lambda: len(run.handled) == 1, timeout_s=30)
    neg = next(t for t in tiles if t.label == "nowildfire")
    assert (neg.lat, neg.lon) == verdicts[-1][1]  # the first matching candidate, in the fixed order
    for reason in ("water", "cover"):
        delta = metric("emberwatch_tiler_negative_candidates_total", verdict=reason) - before[reason]
        assert delta == sum(r == reason for r, _ in verdicts)
    # Requests per fire: one context image of the fire, one per candidate judged, one per tile.
    assert state.by_api["static"] == 1 + len(verdicts) + 2
    state.by_api.clear()
    async with running_tiler(s, suffix=run.suffix, topic_in=run.topic_in) as replay:
        await wait_for(lambda: len(replay.handled) == 1, timeout_s=30)
        assert len(await replay.tiles(3, timeout_s=3)) == 2
    assert state.by_api["static"] == 0  # the places were reused: no context image, no tile refetched


def _pair_far_apart(s) -> tuple[str, list[tuple[float, float]]]:
    lat, lon = 55.0, -112.0
    for i in range(50):
        key = f"ab:pair-{i}"
        places = sample_negatives(key, lat, lon, k=2, near_fire=lambda a, b, km: haversine_km(a, b, lat, lon) < km,
                                  exclusion_km=s.tiler_negative_exclusion_km)
        if haversine_km(*places[0], *places[1]) > 30:
            return key, places
    raise AssertionError("no fire with two negatives far apart")


def _new_fire(key: str, lat: float, lon: float, start: datetime) -> FireObserved:
    return FireObserved.create(producer="test", fire_key=key, source="cwfis-csv", agency="ab", name=key,
                               lat=lat, lon=lon, hectares=5.0, change="new", start_date=start,
                               snapshot_at=datetime(2026, 7, 1, tzinfo=UTC))


async def test_a_later_fire_relabels_or_retires_a_negative_once(kafka_settings, tmp_path, sim, token_file):  # noqa: F811
    url, _ = sim
    s = tiler_settings(kafka_settings, tmp_path / "state", url, token_file, tiler_negatives_per_fire=2,
                       tiler_negative_match_cover=False, tiler_batch_size=1)
    key, places = _pair_far_apart(s)
    before = {a: metric("emberwatch_tiler_tiles_relabelled_total", action=a) for a in ("relabel", "retire")}
    async with running_tiler(s) as run:
        await run.send(fire(key, 55.0, -112.0))
        tiles = await run.tiles(3)
        negs = {(t.lat, t.lon): t for t in tiles if t.label == "nowildfire"}
        inside = destination(*places[0], 45, 0.1)  # 100 m from the first negative's centre
        away = destination(*places[1], 180, 3.0)  # 3 km from the second's
        await run.send(_new_fire("ab:inside", *inside, datetime(2026, 6, 1, tzinfo=UTC)),
                       _new_fire("ab:away", *away, datetime(2026, 6, 1, tzinfo=UTC)), key=b"in-order")
        await wait_for(lambda: len(run.handled) == 3, timeout_s=60)
        events = [TileRelabelled.from_bytes(r.value)
                  for r in await read_all(run.servers, run.out(TileRelabelled), 2, timeout_s=30)]
    mine = {e.tile_id: e for e in events if e.matched_fire_key == key}
    first, second = negs[places[0]], negs[places[1]]
    assert set(mine) == {first.tile_id, second.tile_id}
    assert sum(e.tile_id == first.tile_id for e in events) == 1 and sum(e.tile_id == second.tile_id for e in events) == 1
    relabel, retire = mine[first.tile_id], mine[second.tile_id]
    assert (relabel.action, relabel.label, relabel.fire_key) == ("relabel", "wildfire", "ab:inside")
    assert relabel.previous_label == "nowildfire" and relabel.distance_km < 0.2
    assert (retire.action, retire.label, retire.fire_key) == ("retire", None, "ab:away")
    assert 2.9 < retire.distance_km < 3.1 and "outside its footprint" in retire.reason
    assert metric("emberwatch_tiler_tiles_relabelled_total", action="relabel") - before["relabel"] >= 1
    assert metric("emberwatch_tiler_tiles_relabelled_total", action="retire") - before["retire"] >= 1
    # Replay from the start with the same state: nothing is announced again.
    async with running_tiler(s, suffix=run.suffix, topic_in=run.topic_in) as replay:
        await wait_for(lambda: len(replay.handled) == 3, timeout_s=60)
        again = await read_all(run.servers, run.out(TileRelabelled), len(events) + 1, timeout_s=3)
    assert len(again) == len(events)


async def test_a_changed_split_setting_refuses_to_start(kafka_settings, tmp_path, sim, token_file):  # noqa: F811
    url, _ = sim
    s = tiler_settings(kafka_settings, tmp_path / "state", url, token_file)

    async def publish(event) -> None:
        pass

    _, client = build_tiler(s, publish)
    await client.aclose()
    assert (tmp_path / "state" / "coordination.sqlite3").exists()
    _, client = build_tiler(s, publish)  # the same settings start again
    await client.aclose()
    changed = tiler_settings(kafka_settings, tmp_path / "state", url, token_file, tiler_split_val=0.2)
    with pytest.raises(SplitSettingsChanged, match="EMBERWATCH_TILER_SPLIT_VAL is 0.2, pinned 0.15"):
        build_tiler(changed, publish)
    with pytest.raises(SplitSettingsChanged):
        async with running_tiler(changed):
            pass
