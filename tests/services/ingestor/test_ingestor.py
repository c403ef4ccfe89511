"""The ingestor against the CWFIS simulator over real HTTP and the real broker (Tansu)."""

from __future__ import annotations

import json
import logging
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from emberwatch.messaging.broker import build_broker, publish_event
from services.ingestor.handlers import Handlers
from services.ingestor.models import SOURCE_CSV, SOURCE_WFS
from services.ingestor.state_store import StateStore
from simulators.cwfis.app import SimConfig
from simulators.cwfis.feeds import ALL_QUIRKS, _legacy_stage, _num
from simulators.cwfis.season import US_AGENCIES, FireState, season_start, snapshot
from tests.services.ingestor.helpers import alerts, fire_events, settings_for, topic_records
from tests.simulators.cwfis.serve import running_sim

pytestmark = pytest.mark.timeout(120)
N_FIRES = 600
T0 = season_start(2026) + timedelta(days=30)


# Fixed seeds, one per test (a season is a pure function of its seed): the same events every run,
# and no two tests in a session publish identical events.


@asynccontextmanager
async def ingestor_for(settings, store=None):
    broker = build_broker(settings, "ingestor-test")
    await broker.start()
    published: list = []

    async def publish(event):
        await publish_event(broker, event, service="ingestor")
        published.append(event)

    ing = Handlers(settings, publish, store=store)
    ing.published = published  # what went to the broker, for the tests
    try:
        yield ing
    finally:
        await ing.aclose()
        await broker.stop()


def sim_config(s: int, **kw) -> SimConfig:
    return SimConfig(seed=s, n_fires=N_FIRES, start_at=T0, speed=0.0, **kw)


def expected_legacy(s: int, at: datetime, quirks=frozenset({"ragged", "freetext", "blank_dates"})):
    def printed(x: float) -> float:  # the legacy file prints 6 significant digits
        return float(_num(x))

    return {st.fire.fire_key: (printed(st.lat), printed(st.lon), printed(st.hectares),
                               _legacy_stage(st, quirks))
            for st in snapshot(s, at, N_FIRES) if st.stage != "EX"}


def expected_changes(before: dict, after: dict, tracked_keys: set[str]) -> set[tuple[str, str]]:
    out = {("new", k) for k in after if k not in tracked_keys}
    out |= {("out", k) for k in tracked_keys if k not in after}
    out |= {("updated", k) for k in tracked_keys & set(after) if before[k] != after[k]}
    return out


def changes_of(report) -> set[tuple[str, str]]:
    pairs = [(e.change, e.fire_key) for e in report.events]
    assert len(pairs) == len(set(pairs)), "a fire got two events in one poll"
    return set(pairs)


def metric(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize("columns", [7, 8, 9])
async def test_each_legacy_header_generation_end_to_end(kafka_settings, tmp_path, columns):
    s = 100 + columns
    with running_sim(sim_config(s, columns=columns)) as sim:
        settings = settings_for(kafka_settings, tmp_path, csv_url=sim.csv_url)
        async with ingestor_for(settings) as ing:
            first = await ing.poll_once()
            assert first.outcomes[SOURCE_CSV].outcome == "ok"
            exp0 = expected_legacy(s, T0)
            assert len(exp0) > 20
            assert changes_of(first) == {("new", k) for k in exp0}
            for e in first.events:
                assert (e.lat, e.lon, e.hectares, e.stage_of_control) == exp0[e.fire_key]
                assert e.source == SOURCE_CSV and e.occurred_at == e.snapshot_at
                if columns < 9 or e.agency in US_AGENCIES:
                    assert e.response_type is None
                else:
                    assert e.response_type in ("FUL", "MOD", "MON")
            fires = {st.fire.fire_key: st.fire for st in snapshot(s, T0, N_FIRES)}
            for e in first.events:
                f = fires[e.fire_key]
                blank = f.agency == "conus" and f.index % 3 == 0  # the simulator's blank dates
                assert e.start_date == (None if blank else f.start)

            sim.admin("clock", advance_hours=12)
            second = await ing.poll_once()
            exp1 = expected_legacy(s, T0 + timedelta(hours=12))
            assert changes_of(second) == expected_changes(exp0, exp1, set(exp0))
            assert {c for c, _ in changes_of(second)} >= {"updated"}

            third = await ing.poll_once()  # the same data again
            assert third.outcomes[SOURCE_CSV].outcome == "not_modified" and third.events == []

    ids = {e.event_id for e in first.events + second.events}
    on_topic = await fire_events(kafka_settings.kafka_bootstrap_servers, ids)
    assert sorted(e.event_id for e in on_topic) == sorted(ids)  # each exactly once
    recs = [r for r in await topic_records(kafka_settings.kafka_bootstrap_servers, "fires.observed.v1")
            if json.loads(r.value)["event_id"] in ids]
    assert all(r.key.decode() == json.loads(r.value)["fire_key"] for r in recs)


@pytest.mark.parametrize("fmt", ["csv", "application/json"])
async def test_wfs_formats_end_to_end(kafka_settings, tmp_path, fmt):
    s = 201 if fmt == "csv" else 202
    with running_sim(sim_config(s)) as sim:
        settings = settings_for(kafka_settings, tmp_path, wfs_url=sim.wfs_url, ingestor_wfs_format=fmt)
        async with ingestor_for(settings) as ing:
            def national(at):
                return {st.fire.fire_key: st for st in snapshot(s, at, N_FIRES)
                        if st.fire.agency not in US_AGENCIES}
            first = await ing.poll_once()
            assert first.outcomes[SOURCE_WFS].outcome == "ok"
            now0 = national(T0)
            live0 = {k for k, st in now0.items() if st.stage != "EX"}
            assert changes_of(first) == {("new", k) for k in live0}
            by_key = {e.fire_key: e for e in first.events}
            for k in live0:
                st: FireState = now0[k]
                e = by_key[k]
                assert (e.lat, e.lon, e.hectares, e.stage_of_control, e.response_type) == (
                    st.lat, st.lon, st.hectares, st.stage, st.fire.response_type)
                assert e.name == st.fire.wfs_fire_id and e.start_date is None
            sim.admin("clock", advance_hours=24)
            second = await ing.poll_once()
            now1 = national(T0 + timedelta(hours=24))
            expect = set()
            for k in live0:
                st1 = now1.get(k)
                if st1 is None or st1.stage == "EX":
                    expect.add(("out", k))
                elif (st1.lat, st1.lon, st1.hectares, st1.stage) != (
                        now0[k].lat, now0[k].lon, now0[k].hectares, now0[k].stage):
                    expect.add(("updated", k))
            expect |= {("new", k) for k, st in now1.items() if k not in live0 and st.stage != "EX"}
            assert changes_of(second) == expect
            assert any(c == "out" for c, _ in expect)
            ex_outs = [e for e in second.events if e.change == "out" and e.stage_of_control == "EX"]
            assert ex_outs, "a fire that went EX was reported out with its EX stage"
            assert (await ing.poll_once()).events == []


async def test_both_feeds_report_each_fire_once(kafka_settings, tmp_path):
    s = 301
    with running_sim(sim_config(s)) as sim:
        settings = settings_for(kafka_settings, tmp_path, csv_url=sim.csv_url, wfs_url=sim.wfs_url)
        async with ingestor_for(settings) as ing:
            report = await ing.poll_once()
    states = {st.fire.fire_key: st for st in snapshot(s, T0, N_FIRES) if st.stage != "EX"}
    keys = [e.fire_key for e in report.events]
    assert sorted(keys) == sorted(states) and len(keys) == len(set(keys))
    for e in report.events:
        st = states[e.fire_key]
        if st.fire.agency in US_AGENCIES:
            assert e.source == SOURCE_CSV
        else:  # the WFS's values, the CSV's start date
            assert e.source == SOURCE_WFS and e.name == st.fire.wfs_fire_id
            assert e.start_date == st.fire.start.replace(second=0)
            assert e.stage_of_control == st.stage


async def test_a_restart_between_polls_emits_no_duplicates(kafka_settings, tmp_path):
    s = 401
    servers = kafka_settings.kafka_bootstrap_servers
    with running_sim(sim_config(s)) as sim:
        settings = settings_for(kafka_settings, tmp_path, csv_url=sim.csv_url, wfs_url=sim.wfs_url)
        async with ingestor_for(settings) as first:
            r1 = await first.poll_once()
        assert r1.events and len(first.published) == len(r1.events)
        async with ingestor_for(settings) as restarted:  # same state dir, fresh process state
            r2 = await restarted.poll_once()
            assert r2.events == []
            # the feed's validators were lost (e.g. a CDN changed the ETag): the full body comes
            # back, is parsed, and still nothing is emitted
            restarted.state.feeds[SOURCE_CSV].etag = None
            restarted.state.feeds[SOURCE_CSV].last_modified = None
            restarted.state.feeds[SOURCE_CSV].body_sha256 = None
            r3 = await restarted.poll_once()
            assert r3.outcomes[SOURCE_CSV].outcome == "ok" and r3.events == []
            assert restarted.published == []  # nothing at all went to the broker

        # a crash after publishing and before saving: the next run re-emits the very same events
        sim.admin("clock", advance_hours=12)

        class CrashingStore(StateStore):
            def save(self, state):
                raise RuntimeError("killed before the state was saved")

        async with ingestor_for(settings, store=CrashingStore(tmp_path)) as crashing:
            with pytest.raises(RuntimeError):
                await crashing.poll_once()
        async with ingestor_for(settings) as recovered:
            r4 = await recovered.poll_once()
            assert r4.events and (await recovered.poll_once()).events == []
    ids = {e.event_id for e in r4.events}
    seen = [r for r in await topic_records(servers, "fires.observed.v1")
            if json.loads(r.value)["event_id"] in ids]
    assert len(seen) == 2 * len(ids)  # at-least-once: each event twice...
    by_id: dict[str, set[bytes]] = {}
    for r in seen:
        by_id.setdefault(json.loads(r.value)["event_id"], set()).add(r.value)
    assert all(len(v) == 1 for v in by_id.values())  # ...and byte for byte the same


BAD_MODES = [
    # feed, mode, outcome, reason, alert
    ("csv", "html", "malformed", "html_page", "feed_malformed"),
    ("csv", "truncated", "unavailable", "transport", "feed_unavailable"),
    ("csv", "short", "suspect", "suspect_drop", "feed_suspect"),
    ("csv", "garbage", "malformed", "garbage", "feed_malformed"),
    ("csv", "500", "unavailable", "http_500", "feed_unavailable"),
    ("csv", "503", "unavailable", "http_503", "feed_unavailable"),
    ("csv", "slow", "unavailable", "timeout", "feed_unavailable"),
    ("wfs", "xml", "malformed", "xml_exception", "feed_malformed"),
    ("wfs", "short", "malformed", "bad_json", "feed_malformed"),
    ("wfs", "truncated", "unavailable", "transport", "feed_unavailable"),
    ("wfs", "html", "malformed", "html_page", "feed_malformed"),
]


@pytest.mark.parametrize("feed,mode,outcome,reason,alert", BAD_MODES,
                         ids=[f"{f}-{m}" for f, m, *_ in BAD_MODES])
async def test_a_bad_feed_keeps_the_last_good_snapshot_and_alerts(
        kafka_settings, tmp_path, feed, mode, outcome, reason, alert):
    s = 500 + [m[:2] for m in BAD_MODES].index((feed, mode))
    source = SOURCE_CSV if feed == "csv" else SOURCE_WFS
    with running_sim(sim_config(s, slow_s=1.0)) as sim:
        urls = {"csv_url": sim.csv_url} if feed == "csv" else {"wfs_url": sim.wfs_url}
        settings = settings_for(kafka_settings, tmp_path, ingestor_total_timeout_s=0.3,
                                ingestor_retry_attempts=2, **urls)
        async with ingestor_for(settings) as ing:
            good = await ing.poll_once()
            tracked = dict(ing.state.tracked)
            in_feed = len(ing.state.feeds[source].fires)
            assert good.events and len(tracked) >= 20
            polls_before = metric("emberwatch_ingestor_polls_total", source=source, outcome=outcome)

            sim.admin("clock", advance_hours=24)  # the data moved on, but the feed misbehaves
            sim.admin("mode", mode=mode, feed=feed)
            bad = await ing.poll_once()
            o = bad.outcomes[source]
            assert (o.outcome, o.reason) == (outcome, reason)
            assert bad.events == []  # in particular: no fire marked out
            assert ing.state.tracked == tracked
            assert StateStore(tmp_path).load().tracked.keys() == tracked.keys()
            assert [a.alert for a in bad.alerts] == [alert]
            assert metric("emberwatch_ingestor_polls_total", source=source,
                          outcome=outcome) == polls_before + 1
            assert (await ing.poll_once()).alerts == []  # the same failure is not re-alerted at once

            sim.admin("mode", mode="ok", feed="all")
            healed = await ing.poll_once()
            assert healed.outcomes[source].outcome == "ok"
            assert [a.alert for a in healed.alerts] == ["feed_recovered"]
            assert healed.events  # the day's changes arrive now

    on_topic = await alerts(kafka_settings.kafka_bootstrap_servers)
    mine = {a.event_id: a for a in on_topic}
    sent = mine[bad.alerts[0].event_id]
    assert sent.component == f"ingestor:{source}" and sent.details["reason"] == reason
    assert sent.details["fires_kept"] == in_feed
    assert "no fire is marked out" in sent.message
    assert healed.alerts[0].event_id in mine


async def test_transient_errors_are_retried_with_backoff(kafka_settings, tmp_path):
    with running_sim(sim_config(601)) as sim:
        settings = settings_for(kafka_settings, tmp_path, csv_url=sim.csv_url)
        sim.admin("mode", mode="503", feed="csv", count=2)
        async with ingestor_for(settings) as ing:
            report = await ing.poll_once()
        state = sim.state()
    assert report.outcomes[SOURCE_CSV].outcome == "ok" and report.events and not report.alerts
    assert state["requests"]["csv:503"] == 2 and state["requests"]["csv:ok"] == 1


async def test_feed_quirks_and_rejected_rows_are_counted_and_logged(kafka_settings, tmp_path, caplog):
    s = 701
    with running_sim(sim_config(s, quirks=ALL_QUIRKS)) as sim:
        settings = settings_for(kafka_settings, tmp_path, csv_url=sim.csv_url)
        before = {r: metric("emberwatch_ingestor_rows_rejected_total", source=SOURCE_CSV, reason=r)
                  for r in ("latitude_out_of_range", "bad_hectares", "bad_longitude")}
        dup_before = metric("emberwatch_ingestor_rows_total", source=SOURCE_CSV, outcome="duplicate")
        with caplog.at_level(logging.WARNING, logger="services.ingestor.handlers"):
            async with ingestor_for(settings) as ing:
                report = await ing.poll_once()
                stages = {st: metric("emberwatch_ingestor_fires", stage=st) for st in ("OC", "BH", "UC")}
    exp = expected_legacy(s, T0, ALL_QUIRKS)
    assert changes_of(report) == {("new", k) for k in exp}  # BOM, CRLF, duplicates: same fires
    for r, n in before.items():
        assert metric("emberwatch_ingestor_rows_rejected_total", source=SOURCE_CSV, reason=r) == n + 1
    assert metric("emberwatch_ingestor_rows_total", source=SOURCE_CSV, outcome="duplicate") > dup_before
    logged = [r for r in caplog.records if r.getMessage() == "row rejected"]
    assert sorted(r.reason for r in logged) == ["bad_hectares", "bad_longitude", "latitude_out_of_range"]
    assert all("BAD_" in r.raw for r in logged)
    tracked_stages = [e.stage_of_control for e in report.events]
    assert stages == {st: float(tracked_stages.count(st)) for st in ("OC", "BH", "UC")}


async def test_agency_and_daydelta_filters(kafka_settings, tmp_path):
    s = 11  # a season with fires of these agencies started in the last days
    with running_sim(sim_config(s)) as sim:
        settings = settings_for(kafka_settings, tmp_path, csv_url=sim.csv_url,
                                ingestor_agencies="bc,ab,on", ingestor_daydelta=4)
        async with ingestor_for(settings) as ing:
            report = await ing.poll_once()
    snap_at = T0.replace(minute=0, second=0, microsecond=0)
    want = {st.fire.fire_key for st in snapshot(s, T0, N_FIRES)
            if st.stage != "EX" and st.fire.agency in ("bc", "ab", "on")
            and st.fire.start >= snap_at - timedelta(days=4)}
    assert want and {e.fire_key for e in report.events} == want
    assert any(st.fire.agency in ("bc", "ab", "on") and st.stage != "EX"
               for st in snapshot(s, T0, N_FIRES) if st.fire.fire_key not in want)  # some filtered


async def test_switching_a_feed_off_marks_nothing_out(kafka_settings, tmp_path):
    s = 901
    with running_sim(sim_config(s)) as sim:
        both = settings_for(kafka_settings, tmp_path, csv_url=sim.csv_url, wfs_url=sim.wfs_url)
        async with ingestor_for(both) as ing:
            first = await ing.poll_once()
        us_only = {e.fire_key for e in first.events if e.agency in US_AGENCIES}
        assert us_only and first.events
        wfs_only = settings_for(kafka_settings, tmp_path, wfs_url=sim.wfs_url)  # CSV switched off
        async with ingestor_for(wfs_only) as ing:
            report = await ing.poll_once()
            assert report.events == [] and set(report.dropped) == us_only
            assert SOURCE_CSV not in ing.state.feeds
            assert not us_only & set(ing.state.tracked)


async def test_a_client_error_is_not_retried_and_alerts(kafka_settings, tmp_path):
    with running_sim(sim_config(951)) as sim:
        settings = settings_for(kafka_settings, tmp_path, wfs_url=sim.wfs_url,
                                ingestor_wfs_layer="public:no_such_layer")
        async with ingestor_for(settings) as ing:
            report = await ing.poll_once()
        requests = sim.state()["requests"]
    o = report.outcomes[SOURCE_WFS]
    assert (o.outcome, o.reason) == ("http_error", "http_400") and "after 1 attempt" in o.error
    assert requests["wfs:400"] == 1  # asked once: a 400 is not retried
    assert [a.alert for a in report.alerts] == ["feed_http_error"]
    assert "no good snapshot yet" in report.alerts[0].message and report.events == []
