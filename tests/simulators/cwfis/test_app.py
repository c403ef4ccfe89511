"""The CWFIS simulator over real HTTP: formats, conditional requests, error modes, the clock."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import httpx
import pytest

from simulators.cwfis.app import SimConfig
from simulators.cwfis.feeds import LEGACY_HEADERS, WFS_COLUMNS
from simulators.cwfis.season import season_start, snapshot
from tests.simulators.cwfis.serve import running_sim

pytestmark = pytest.mark.timeout(60)
T0 = season_start(2026) + timedelta(days=30)
WFS = {"service": "WFS", "version": "2.0.0", "request": "GetFeature",
       "typeNames": "public:cwfif_national_activefires"}


def config(**kw) -> SimConfig:
    return SimConfig(seed=42, n_fires=500, start_at=T0, speed=0.0, **kw)


def test_legacy_csv_in_each_header_generation():
    with running_sim(config()) as sim:
        for cols in (7, 8, 9):
            sim.admin("config", columns=cols)
            r = httpx.get(sim.csv_url)
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
            lines = r.text.split("\n")
            assert lines[0] == ", ".join(LEGACY_HEADERS[cols])
            for ln in lines[1:]:  # ragged like the real file: Alaska stops after the stage,
                fields = ln.split(", ")  # CONUS after the timezone
                want = {"ak": 7, "conus": min(8, cols)}.get(fields[0], cols)
                assert len(fields) == want, ln
            assert len(lines) > 20
            assert not r.text.endswith("\n")
        assert httpx.get(sim.csv_url, params={"columns": 7}).text.startswith(
            ", ".join(LEGACY_HEADERS[7]) + "\n")
        assert httpx.get(sim.csv_url, params={"columns": 5}).status_code == 400


def test_wfs_csv_and_geojson_carry_the_same_fires():
    with running_sim(config()) as sim:
        c = httpx.get(sim.wfs_url, params={**WFS, "outputFormat": "csv"})
        j = httpx.get(sim.wfs_url, params={**WFS, "outputFormat": "application/json"})
        assert c.status_code == j.status_code == 200
        rows = c.text.splitlines()
        assert rows[0].split(",") == WFS_COLUMNS
        doc = json.loads(j.content)
        assert doc["type"] == "FeatureCollection" and doc["numberReturned"] == len(rows) - 1
        ids = {f["properties"]["national_fire_id"] for f in doc["features"]}
        expected = {st.fire.fire_key for st in snapshot(42, T0, 500) if st.fire.agency not in ("ak", "conus")}
        assert len(ids) == len(expected) > 10
        bad = httpx.get(sim.wfs_url, params={**WFS, "typeNames": "public:nope", "outputFormat": "csv"})
        assert bad.status_code == 400 and b"ExceptionReport" in bad.content


def test_conditional_requests_and_the_clock():
    with running_sim(config()) as sim:
        first = httpx.get(sim.csv_url)
        etag, lm = first.headers["etag"], first.headers["last-modified"]
        assert httpx.get(sim.csv_url, headers={"If-None-Match": etag}).status_code == 304
        assert httpx.get(sim.csv_url, headers={"If-Modified-Since": lm}).status_code == 304
        sim.admin("clock", advance_hours=12)
        later = httpx.get(sim.csv_url, headers={"If-None-Match": etag})
        assert later.status_code == 200 and later.headers["etag"] != etag
        assert later.headers["last-modified"] != lm
        state = sim.admin("clock", at="2026-07-01T05:30:00+00:00")
        assert datetime.fromisoformat(state["now"]) == datetime.fromisoformat("2026-07-01T05:30:00+00:00")
        assert sim.state()["requests"]["csv:304"] == 2


@pytest.mark.parametrize("mode", ["html", "garbage", "500", "503", "xml", "short"])
def test_error_modes(mode):
    with running_sim(config()) as sim:
        good = httpx.get(sim.csv_url).content
        sim.admin("mode", mode=mode, feed="csv", count=1)
        r = httpx.get(sim.csv_url)
        if mode in ("500", "503"):
            assert r.status_code == int(mode)
            assert mode == "500" or r.headers["retry-after"] == "1"
        elif mode == "html":
            assert r.headers["content-type"].startswith("text/html") and b"<html>" in r.content
        elif mode == "xml":
            assert b"ows:ExceptionReport" in r.content
        elif mode == "short":
            assert r.status_code == 200 and good.startswith(r.content) and len(r.content) < len(good)
        else:
            assert r.content != good and b"\x00" in r.content or len(set(r.content)) > 100
        assert httpx.get(sim.csv_url).content == good  # count=1: back to normal
        assert httpx.get(sim.wfs_url, params={**WFS, "outputFormat": "csv"}).status_code == 200


def test_truncated_transfer_and_slow_answers():
    with running_sim(config(slow_s=1.0)) as sim:
        sim.admin("mode", mode="truncated", feed="csv")
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(sim.csv_url)
        sim.admin("mode", mode="slow", feed="all")
        with pytest.raises(httpx.ReadTimeout):
            httpx.get(sim.csv_url, timeout=0.2)
        assert httpx.get(sim.csv_url, params={"_mode": "ok"}).status_code == 200
        sim.admin("mode", mode="ok", feed="all")
        assert sim.state()["modes"] == {}
