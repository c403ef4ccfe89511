"""The Mapbox simulator's clock: fires appear at their start and grow, and the demo keeps it in step with CWFIS."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
import pytest
from PIL import Image

from simulators.mapbox.app import SimClock, SimState, default_epoch, fires_from_cwfis_season
from simulators.mapbox.imagery import Fire, FireField, fire_at, render_static
from tests.simulators.mapbox.helpers import running_simulator

pytestmark = pytest.mark.timeout(120)
TOKEN = {"access_token": "pk.simulator"}
T0 = datetime(2026, 6, 10, 12, tzinfo=UTC)


def _changed(a: np.ndarray, b: np.ndarray) -> float:
    """Share of pixels that differ visibly."""
    return float((np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=-1) > 24).mean())


def test_fire_signs_are_absent_before_the_start_present_after_and_larger_later():
    lat, lon = 56.4321, -116.789
    field = FireField([Fire(lat, lon, 60.0, start=T0, growth_h=72)])
    empty = render_static(lat, lon, 15, 350, 350, at=T0 - timedelta(hours=1))
    before = render_static(lat, lon, 15, 350, 350, fires=field, at=T0 - timedelta(hours=1))
    assert np.array_equal(before, empty)  # nothing of the fire before it starts
    early = _changed(render_static(lat, lon, 15, 350, 350, fires=field, at=T0 + timedelta(hours=12)),
                     render_static(lat, lon, 15, 350, 350, at=T0 + timedelta(hours=12)))
    late = _changed(render_static(lat, lon, 15, 350, 350, fires=field, at=T0 + timedelta(hours=72)),
                    render_static(lat, lon, 15, 350, 350, at=T0 + timedelta(hours=72)))
    assert early > 0.02, early
    assert late > 1.5 * early, (early, late)


def test_season_fires_show_their_reported_area_at_the_clock_and_the_scar_stays():
    from simulators.cwfis.season import fire_state

    fires = fires_from_cwfis_season("7,60,2026")
    f = max(fires, key=lambda x: x.season.final_hectares)
    s = f.season
    assert fire_at(f, s.start - timedelta(minutes=1)) is None
    mid = s.start + timedelta(hours=s.oc_h // 2)
    assert fire_at(f, mid) == (fire_state(s, mid).hectares, "OC")
    later = s.start + timedelta(hours=s.oc_h + s.bh_h + 1)
    assert fire_at(f, later)[0] >= fire_at(f, mid)[0]
    gone = s.out + timedelta(days=30)
    ha, stage = fire_at(f, gone)
    assert stage == "OUT" and ha > 0
    field = FireField([f])
    for at, shown in ((s.start - timedelta(hours=1), False), (mid, True), (gone, True)):
        with_fire = render_static(f.lat, f.lon, 15, 128, 128, fires=field, at=at)
        without = render_static(f.lat, f.lon, 15, 128, 128, at=at)
        assert (not np.array_equal(with_fire, without)) == shown, at


def test_a_fire_without_a_start_is_always_shown():
    f = Fire(55.0, -110.0, 100.0)
    assert fire_at(f, None) == (100.0, "OC") and fire_at(f, datetime(2000, 1, 1, tzinfo=UTC)) == (100.0, "OC")


def _img(resp) -> np.ndarray:
    assert resp.status_code == 200, resp.text
    return np.asarray(Image.open(io.BytesIO(resp.content)).convert("RGB"))


def test_clock_api_moves_the_imagery_in_time():
    state = SimState(clock=SimClock(T0, speed=0.0))
    lat, lon = 57.2, -118.3
    path = f"/styles/v1/mapbox/satellite-v9/static/{lon},{lat},15,0/200x200"
    with running_simulator(state) as (url, _), httpx.Client(base_url=url, timeout=10) as c:
        assert c.get("/_admin/clock").json() == {"now": T0.isoformat(), "speed": 0.0}
        start = T0 + timedelta(hours=6)
        r = c.post("/_admin/fires", json=[{"lat": lat, "lon": lon, "hectares": 200, "start": start.isoformat()}])
        assert r.status_code == 200 and r.json()[0]["start"] == start.isoformat()
        before = _img(c.get(path, params=TOKEN))
        r = c.post("/_admin/clock", json={"advance_hours": 7})
        assert r.json()["now"] == (T0 + timedelta(hours=7)).isoformat()
        after = _img(c.get(path, params=TOKEN))
        assert _changed(after, before) > 0.05
        r = c.post("/_admin/clock", json={"at": "2026-06-10T00:00:00"})  # naive = UTC
        assert r.json()["now"] == "2026-06-10T00:00:00+00:00"
        assert np.array_equal(_img(c.get(path, params=TOKEN)), before)
        r = c.post("/_admin/clock", json={"speed": 3600})
        assert r.json()["speed"] == 3600
        assert datetime.fromisoformat(c.get("/_admin/clock").json()["now"]) > datetime(2026, 6, 10, tzinfo=UTC)
        assert c.post("/_admin/clock", json={"at": "not a time"}).status_code == 422
        assert c.post("/_admin/clock", json={"speed": -1}).status_code == 422
        assert c.post("/_admin/fires", json=[{"lat": 1, "lon": 2, "start": "nope"}]).status_code == 422


def test_clock_starts_where_the_cwfis_simulators_does(monkeypatch):
    from simulators.cwfis.app import SimConfig
    from simulators.cwfis.app import SimState as CwfisState
    from simulators.mapbox.app import state_from_env

    for var in ("EMBERWATCH_MAPBOX_SIM_START", "EMBERWATCH_MAPBOX_SIM_SPEED", "EMBERWATCH_SIM_CWFIS_START",
                "EMBERWATCH_MAPBOX_SIM_FIRES"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("EMBERWATCH_MAPBOX_SIM_CWFIS_SEASON", "7,20,2025")
    monkeypatch.setenv("EMBERWATCH_SIM_CWFIS_SPEED", "0")
    state = state_from_env()
    assert state.clock.speed == 0.0
    assert state.clock.now() == CwfisState(SimConfig(year=2025)).sim_epoch == default_epoch(2025)
    monkeypatch.setenv("EMBERWATCH_SIM_CWFIS_START", "2025-07-01T06:00:00")
    assert state_from_env().clock.now() == datetime(2025, 7, 1, 6, tzinfo=UTC)
    monkeypatch.setenv("EMBERWATCH_MAPBOX_SIM_SPEED", "5")
    assert state_from_env().clock.speed == 5.0


def test_the_demo_sets_the_imagery_clocks_before_it_advances_cwfis(monkeypatch):
    from emberwatch.common.config import Settings
    from emberwatch.operations import run_demo
    from tests.simulators.cwfis.serve import running_sim
    from tests.simulators.stac.helpers import frozen_state
    from tests.simulators.stac.helpers import running_simulator as running_stac

    with running_sim() as cwfis, running_simulator(SimState(clock=SimClock(T0, 0.0))) as (murl, mstate), \
            running_stac(frozen_state(T0 - timedelta(days=3))) as (surl, sstate):
        settings = Settings(stack_host="127.0.0.1", cwfis_sim_port=int(cwfis.url.rsplit(":", 1)[1]),
                            mapbox_sim_port=int(murl.rsplit(":", 1)[1]), stac_sim_port=int(surl.rsplit(":", 1)[1]))
        cwfis_now = datetime.fromisoformat(httpx.get(f"{cwfis.url}/_admin/state").json()["now"])
        order = []
        real_post = httpx.post

        def post(url, **kw):
            order.append(url.split("/_admin/")[0])
            return real_post(url, **kw)

        monkeypatch.setattr(run_demo.httpx, "post", post)
        state = run_demo._advance_season(settings, 12)
        target = cwfis_now + timedelta(hours=12)
        assert datetime.fromisoformat(state["now"]) == target
        assert mstate.clock.now() == target  # in step, although the Mapbox clock started elsewhere
        assert sstate.clock.now() == target  # the STAC simulator's too
        assert order == [murl, surl, cwfis.url]  # imagery first: no fire is reported before its imagery shows it
