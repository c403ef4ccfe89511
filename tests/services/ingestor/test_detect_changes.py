"""Change detection, merging the two feeds, filters and the state file: pure logic."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from services.ingestor.detect_changes import detect_changes
from services.ingestor.filters import FireFilter
from services.ingestor.merge_feeds import merge_feeds
from services.ingestor.models import SOURCE_CSV, SOURCE_WFS, FireRecord
from services.ingestor.state_store import FeedSnapshot, IngestorState, StateStore

T0 = datetime(2026, 7, 1, 12, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)


def rec(name: str, agency: str = "bc", ha: float | None = 1.0, stage: str | None = "OC",
        lat: float = 50.0, lon: float = -120.0, source: str = SOURCE_CSV,
        start: datetime | None = T0, at: datetime = T0) -> FireRecord:
    au = agency.upper()
    return FireRecord(f"2026_{au}_{name}", f"{au}_{name}", agency, name, lat, lon, start, ha, stage,
                      None, source, None, at)


def keyed(*records: FireRecord) -> dict[str, FireRecord]:
    return {r.fire_key: r for r in records}


def test_new_updated_out_and_unchanged():
    before = keyed(rec("A"), rec("B"), rec("C"), rec("D"), rec("E"))
    now = keyed(rec("A", at=T1), rec("B", ha=2.0, at=T1), rec("C", stage="BH", at=T1),
                rec("D", lat=50.01, at=T1), rec("F", at=T1), rec("G", stage="EX", at=T1))
    changes, tracked, dropped = detect_changes(before, now, T1)
    got = sorted((c.change, c.record.name) for c in changes)
    assert got == [("new", "F"), ("out", "E"), ("updated", "B"), ("updated", "C"), ("updated", "D")]
    assert set(tracked) == {"2026_BC_A", "2026_BC_B", "2026_BC_C", "2026_BC_D", "2026_BC_F"}
    assert dropped == []
    assert all(c.snapshot_at == T1 for c in changes)


def test_same_data_again_changes_nothing():
    now = keyed(rec("A"), rec("B", stage="Fire of Note"))
    changes, tracked, _ = detect_changes({}, now, T0)
    assert len(changes) == 2
    again, tracked2, _ = detect_changes(tracked, now, T0)
    assert again == [] and tracked2 == tracked


def test_stage_ex_is_out_and_is_not_tracked_again():
    tracked = keyed(rec("A"))
    changes, tracked, _ = detect_changes(tracked, keyed(rec("A", stage="EX", at=T1)), T1)
    assert [(c.change, c.record.stage) for c in changes] == [("out", "EX")]
    changes, tracked, _ = detect_changes(tracked, keyed(rec("A", stage="EX", at=T1)), T1)
    assert changes == [] and tracked == {}


def test_filters_admit_new_fires_and_drop_out_of_scope_ones_quietly():
    f = FireFilter.from_settings("bc,ab", "-125,48,-110,60", daydelta=7)
    old = rec("OLD", start=T0 - timedelta(days=30))
    young = rec("YOUNG", start=T0 - timedelta(days=2))
    undated = rec("UNDATED", start=None)
    qc = rec("Q", agency="qc")
    outside = rec("FAR", lon=-100.0)
    changes, tracked, _ = detect_changes(
        {}, keyed(old, young, undated, qc, outside), T0,
        in_scope=f.in_scope, admits=lambda r: f.admits(r, T0))
    assert sorted(c.record.name for c in changes) == ["UNDATED", "YOUNG"]
    # a tracked fire that grows older than daydelta stays tracked: it is not out
    later = T0 + timedelta(days=20)
    changes, tracked, _ = detect_changes(
        tracked, keyed(replace(young, snapshot_at=later), replace(undated, snapshot_at=later)), later,
        in_scope=f.in_scope, admits=lambda r: f.admits(r, later))
    assert changes == [] and set(tracked) == {young.fire_key, undated.fire_key}
    # the filter narrows (operator changed it): the fire is dropped without an "out" event
    narrow = FireFilter.from_settings("ab", "", 0)
    changes, tracked, dropped = detect_changes(tracked, keyed(young, undated), later,
                                               in_scope=narrow.in_scope,
                                               admits=lambda r: narrow.admits(r, later))
    assert changes == [] and tracked == {} and dropped == [young.fire_key, undated.fire_key]


def test_the_same_fire_in_both_feeds_is_one_fire():
    csv_bc = rec("G51747", ha=1.0, stage="UC", source=SOURCE_CSV, start=T0)
    wfs_bc = replace(rec("G51747", ha=2.5, stage="OC", source=SOURCE_WFS, start=None),
                     name="2026-G51747")
    only_csv = rec("Icy Bay", agency="ak", source=SOURCE_CSV)
    only_wfs = rec("HWF-1", agency="ab", source=SOURCE_WFS)
    merged = merge_feeds({SOURCE_CSV: keyed(csv_bc, only_csv), SOURCE_WFS: keyed(wfs_bc, only_wfs)})
    assert set(merged) == {csv_bc.fire_key, only_csv.fire_key, only_wfs.fire_key}
    one = merged[csv_bc.fire_key]
    assert (one.source, one.hectares, one.stage, one.name) == (SOURCE_WFS, 2.5, "OC", "2026-G51747")
    assert one.start_date == T0  # the WFS has no start date: the CSV fills it


def test_state_round_trips_through_an_atomic_file(tmp_path):
    store = StateStore(tmp_path)
    assert store.load().tracked == {}
    fires = keyed(rec("A"), rec("B", stage=None, ha=None, start=None))
    state = IngestorState({SOURCE_CSV: FeedSnapshot(fires, T0, T1, '"e1"', "Wed, 01 Jul 2026 12:00:00 GMT",
                                                    "abc")}, dict(fires))
    store.save(state)
    back = store.load()
    assert back.tracked == state.tracked and back.feeds[SOURCE_CSV] == state.feeds[SOURCE_CSV]
    assert [p.name for p in store.path.parent.iterdir()] == ["state.json"]  # no temp files left
    store.path.write_text("{not json")
    assert store.load().tracked == {}
    assert store.path.with_suffix(".broken").exists()
