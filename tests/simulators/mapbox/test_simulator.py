"""The Mapbox simulator over real HTTP: both API paths, determinism, fires, and Mapbox's errors."""

from __future__ import annotations

import io
import time

import httpx
import numpy as np
import pytest
from PIL import Image

from services.tiler.mosaic import assemble, plan_mosaic
from simulators.mapbox.app import SimState
from simulators.mapbox.imagery import Fire
from tests.simulators.mapbox.helpers import running_simulator

pytestmark = pytest.mark.timeout(60)
TOKEN = {"access_token": "pk.simulator"}


def static_path(lat, lon, zoom=15, size="350x350"):
    return f"/styles/v1/mapbox/satellite-v9/static/{lon},{lat},{zoom},0/{size}"


@pytest.fixture(scope="module")
def sim():
    with running_simulator() as (url, state):
        with httpx.Client(base_url=url, timeout=10) as client:
            yield client, state


def _img(resp) -> np.ndarray:
    assert resp.status_code == 200, resp.text
    return np.asarray(Image.open(io.BytesIO(resp.content)).convert("RGB"), dtype=np.float32)


def test_static_images_are_deterministic_jpegs_of_the_asked_size(sim):
    client, _ = sim
    a = client.get(static_path(55.0, -115.0), params=TOKEN)
    b = client.get(static_path(55.0, -115.0), params=TOKEN)
    c = client.get(static_path(55.0, -115.2), params=TOKEN)
    assert a.headers["content-type"] == "image/jpeg"
    assert a.content == b.content and a.content != c.content
    assert Image.open(io.BytesIO(a.content)).size == (350, 350)
    retina = client.get(static_path(55.0, -115.0, size="100x80@2x"), params=TOKEN)
    assert Image.open(io.BytesIO(retina.content)).size == (200, 160)


def test_raster_tiles_mosaic_to_the_static_image_of_the_same_footprint(sim):
    client, _ = sim
    lat, lon, zoom = 56.31, -117.42, 15
    plan = plan_mosaic(lat, lon, zoom, 350)
    tiles = {}
    for x, y in plan.tiles():
        r = client.get(f"/v4/mapbox.satellite/{zoom}/{x}/{y}@2x.png", params=TOKEN)
        assert r.headers["content-type"] == "image/png"
        tiles[(x, y)] = Image.open(io.BytesIO(r.content))
        assert tiles[(x, y)].size == (512, 512)
    crop = np.asarray(assemble(plan, tiles), dtype=np.float32)
    static = _img(client.get(static_path(lat, lon, zoom), params=TOKEN))
    elsewhere = _img(client.get(static_path(lat + 0.05, lon, zoom), params=TOKEN))
    same = np.abs(crop - static).mean()
    assert same < 6, same  # same ground up to half a pixel and JPEG noise
    assert np.abs(crop - elsewhere).mean() > 3 * same
    small = client.get(f"/v4/mapbox.satellite/{zoom}/{plan.tx0}/{plan.ty0}.jpg90", params=TOKEN)
    assert Image.open(io.BytesIO(small.content)).size == (256, 256)
    pal = client.get(f"/v4/mapbox.satellite/{zoom}/{plan.tx0}/{plan.ty0}.png256", params=TOKEN)
    assert Image.open(io.BytesIO(pal.content)).mode == "P"


def test_fires_pushed_by_the_admin_api_show_as_darker_burn_scars(sim):
    client, state = sim
    lat, lon = 57.123, -112.456
    before = _img(client.get(static_path(lat, lon), params=TOKEN))
    r = client.post("/_admin/fires", json=[{"lat": lat, "lon": lon, "hectares": 400}])
    assert r.status_code == 200 and r.json()[0]["hectares"] == 400
    try:
        after = _img(client.get(static_path(lat, lon), params=TOKEN))
        assert np.abs(after - before).mean() > 10
        far = _img(client.get(static_path(lat + 1.0, lon), params=TOKEN))
        client.post("/_admin/fires", json=[])
        far_without = _img(client.get(static_path(lat + 1.0, lon), params=TOKEN))
        assert np.array_equal(far, far_without)  # a fire changes only its surroundings
    finally:
        client.post("/_admin/fires", json=[])
    assert client.post("/_admin/fires", json=[{"lat": 95, "lon": 0}]).status_code == 422


def test_fire_appearance_varies_between_fires():
    from simulators.mapbox.imagery import FireField, render_static

    rng = np.random.default_rng(0)
    fires = [Fire(float(rng.uniform(50, 60)), float(rng.uniform(-125, -95)), float(rng.choice([2, 50, 800])))
             for _ in range(30)]
    field = FireField(fires)
    change = []
    for f in fires:
        with_fire = render_static(f.lat, f.lon, 15, 128, 128, fires=field).astype(np.float32)
        without = render_static(f.lat, f.lon, 15, 128, 128).astype(np.float32)
        change.append(np.abs(with_fire - without).mean())
    change = np.array(change)
    assert (change > 1).mean() > 0.7  # most fires are visible...
    assert change.std() > 5  # ...to very different degrees (small, smoky, partly in view)


def test_token_errors_and_bad_parameters(sim):
    client, _ = sim
    r = client.get(static_path(55, -115))
    assert r.status_code == 401 and r.json() == {"message": "Not Authorized - No Token"}
    r = client.get(static_path(55, -115), params={"access_token": "pk.wrong"})
    assert r.status_code == 401 and "Invalid Token" in r.json()["message"]
    assert client.get(static_path(55, -115, size="1281x350"), params=TOKEN).status_code == 422
    assert client.get(static_path(55, -115, zoom=23), params=TOKEN).status_code == 422
    assert client.get(static_path(89, -115), params=TOKEN).status_code == 422
    assert client.get("/v4/mapbox.satellite/23/0/0@2x.jpg90", params=TOKEN).status_code == 422
    assert client.get("/v4/mapbox.satellite/2/4/0@2x.jpg90", params=TOKEN).status_code == 404
    assert client.get("/v4/mapbox.satellite/2/1/1.gif", params=TOKEN).status_code == 422


def test_rate_limit_answers_429_with_mapbox_headers(sim):
    client, _ = sim
    client.post("/_admin/config", json={"rate_limit": 2, "rate_interval_s": 60})
    try:
        codes = [client.get(static_path(50, -100, size="16x16"), params=TOKEN) for _ in range(3)]
        assert [c.status_code for c in codes] == [200, 200, 429]
        h = codes[2].headers
        assert 1 <= int(h["Retry-After"]) <= 60
        assert h["X-Rate-Limit-Limit"] == "2" and h["X-Rate-Limit-Interval"] == "60"
        assert 0 < int(h["X-Rate-Limit-Reset"]) - time.time() <= 61
    finally:
        client.post("/_admin/config", json={"rate_limit": None})
    assert client.get(static_path(50, -100, size="16x16"), params=TOKEN).status_code == 200


def test_admin_faults_are_served_in_order_then_cleared(sim):
    client, _ = sim
    for fault in ({"mode": "status", "status": 503}, {"mode": "json_200"}, {"mode": "html_200"},
                  {"mode": "truncated"}, {"mode": "blank"}):
        client.post("/_admin/faults", json=fault)
    get = lambda: client.get(static_path(51, -101, size="64x64"), params=TOKEN)  # noqa: E731
    assert get().status_code == 503
    r = get()
    assert r.status_code == 200 and r.json()["message"]
    r = get()
    assert r.status_code == 200 and r.text.startswith("<html>")
    r = get()
    with pytest.raises(OSError):
        Image.open(io.BytesIO(r.content)).load()
    blank = _img(get())
    assert blank.std() < 1
    assert _img(get()).std() > 5
    client.post("/_admin/faults", json={"mode": "status", "status": 500, "count": -1})
    assert get().status_code == 500 and get().status_code == 500
    client.delete("/_admin/faults")
    assert get().status_code == 200
    assert client.post("/_admin/faults", json={"mode": "nope"}).status_code == 422
    stats = client.get("/_admin/stats").json()
    assert stats["by_status"]["500"] >= 2 and stats["max_in_flight"] >= 1


def test_state_from_env_reads_tokens_fires_and_latency(tmp_path, monkeypatch):
    from simulators.mapbox.app import state_from_env

    path = tmp_path / "fires.json"
    path.write_text('[{"lat": 55.5, "lon": -110.5, "hectares": 12}]')
    monkeypatch.setenv("EMBERWATCH_MAPBOX_SIM_FIRES", str(path))
    monkeypatch.setenv("EMBERWATCH_MAPBOX_SIM_TOKENS", "pk.a, pk.b")
    monkeypatch.setenv("EMBERWATCH_MAPBOX_SIM_LATENCY_MS", "100")
    state = state_from_env()
    assert isinstance(state, SimState)
    assert state.tokens == {"pk.a", "pk.b"} and state.latency_s == 0.1
    assert [(f.lat, f.lon, f.hectares) for f in state.fires.fires] == [(55.5, -110.5, 12.0)]


def test_pool_imagery_gives_distinct_valid_images_without_rendering(sim):
    from services.tiler.validate_image import validate_image

    client, _ = sim
    client.post("/_admin/config", json={"imagery": "pool"})
    try:
        a = client.get(static_path(55.0, -115.0), params=TOKEN).content
        b = client.get(static_path(55.0, -115.0), params=TOKEN).content
        c = client.get(static_path(55.001, -115.0), params=TOKEN).content
        png = client.get("/v4/mapbox.satellite/15/8000/12000@2x.png", params=TOKEN).content
    finally:
        client.post("/_admin/config", json={"imagery": "render"})
    assert a == b and a != c
    for data, size in ((a, (350, 350)), (c, (350, 350)), (png, (512, 512))):
        validate_image(data, expected_size=size)
    assert client.post("/_admin/config", json={"imagery": "nope"}).status_code == 422


def test_fires_can_come_from_the_cwfis_season(monkeypatch):
    from simulators.cwfis.season import fire_locations
    from simulators.mapbox.app import state_from_env

    monkeypatch.setenv("EMBERWATCH_MAPBOX_SIM_CWFIS_SEASON", "7,40,2026")
    state = state_from_env()
    expected = fire_locations(seed=7, n_fires=40, year=2026)
    assert len(state.fires.fires) == 40
    for fire, loc in zip(state.fires.fires, expected, strict=True):
        assert abs(fire.lat - loc.lat) < 1e-3 and abs(fire.lon - loc.lon) < 1e-3
        assert fire.hectares and fire.hectares > 0
