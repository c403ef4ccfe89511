"""The simulated season is a pure function of its seed, and fires live a plausible life."""

from __future__ import annotations

from datetime import timedelta

from simulators.cwfis.season import (
    fire_locations,
    fire_state,
    season_fires,
    season_start,
    snapshot,
    to_epsg3978,
)


def test_same_seed_same_season_other_seed_other_season():
    a = fire_locations(seed=7, n_fires=200)
    assert a == fire_locations(seed=7, n_fires=200)
    assert a != fire_locations(seed=8, n_fires=200)
    assert len({loc.fire_key for loc in a}) == 200
    for loc in a:
        assert 40 <= loc.lat <= 67 and -156 <= loc.lon <= -52
        assert loc.start < loc.out


def test_fires_appear_grow_change_stage_and_go_out():
    t0 = season_start(2026)
    fires = season_fires(seed=3, n_fires=300)
    for f in fires[:60]:
        assert fire_state(f, f.start - timedelta(minutes=1)) is None
        states = [fire_state(f, f.start + timedelta(hours=h)) for h in range(0, 2000, 3)]
        live = [s for s in states if s is not None]
        stages = [s.stage for s in live]
        # stages only move forward: OC -> BH -> UC -> EX, then the fire is gone
        order = {"OC": 0, "BH": 1, "UC": 2, "EX": 3}
        assert [order[x] for x in stages] == sorted(order[x] for x in stages)
        assert stages[0] == "OC" and stages[-1] == "EX"
        sizes = [s.hectares for s in live]
        assert sizes == sorted(sizes) and sizes[-1] > 0  # fires do not shrink
        assert states[-1] is None
    counts = [len(snapshot(3, t0 + timedelta(days=d), 300)) for d in (0, 30, 60, 90)]
    assert counts[0] == 0 and all(c > 0 for c in counts[1:])


def test_canada_atlas_lambert_matches_the_real_feed():
    # a fire of the real WFS export: latitude/longitude and its EPSG:3978 geometry
    x, y = to_epsg3978(57.5866, -117.5068)
    assert abs(x - -1286110.434717) < 20 and abs(y - 1172485.583374) < 20
