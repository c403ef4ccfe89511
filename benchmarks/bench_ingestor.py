"""Parse + diff of a 10,000-fire CWFIS snapshot: the ingestor's code against naive approaches.

Two snapshots of 10,000 fires an hour apart (10% grew, 2% changed stage, 1% moved, 2% new, 2% out;
ragged US rows, free-text stages, blank dates) in the legacy ``activefires.csv`` format, plus the
same data as WFS CSV and GeoJSON. For each approach: parse the second snapshot and diff it against
the fires tracked from the first. Median of several runs (time.perf_counter); peak memory of one run
(tracemalloc, in a separate run so it does not slow the timing).

Approaches:
- emberwatch: ``services.ingestor.parse_feed`` + ``detect_changes`` (what the service runs);
- pandas: ``read_csv`` + ``to_dict("records")`` + a row-by-row dict diff (if pandas is installed);
- csv.DictReader: the standard library's dict rows + the same row-by-row dict diff.

Usage: python benchmarks/bench_ingestor.py [N_FIRES] [RUNS]
"""

from __future__ import annotations

import csv
import gc
import io
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from services.ingestor.detect_changes import detect_changes  # noqa: E402
from services.ingestor.parse_feed import parse  # noqa: E402
from simulators.cwfis import feeds  # noqa: E402
from simulators.cwfis.season import FireState, SeasonFire  # noqa: E402

T0 = datetime(2026, 7, 15, 12, tzinfo=UTC)
AGENCIES = ["bc", "ab", "sk", "mb", "on", "qc", "nt", "yt", "ak", "conus"]


def make_states(n: int, seed: int = 1) -> tuple[list[FireState], list[FireState]]:
    """Two snapshots an hour apart."""
    rng = random.Random(seed)
    fires = []
    for i in range(int(n * 1.02)):
        a = rng.choice(AGENCIES)
        fires.append(SeasonFire(
            index=i, agency=a, name=f"F{i:06d}", region_code="R1", lat=round(rng.uniform(45, 65), 4),
            lon=round(rng.uniform(-139, -60), 4), start=T0 - timedelta(hours=rng.randrange(1, 2000)),
            report_every_h=6, oc_h=50, bh_h=50, uc_h=50, final_hectares=100.0, correction=None,
            cause="N", response_type=rng.choice(["FUL", "MOD", "MON"]), timezone="MDT"))
    first, second = [], []
    for i, f in enumerate(fires):
        ha = round(rng.lognormvariate(2, 2), 1)
        stage = rng.choice(["OC", "BH", "UC"])
        s1 = FireState(f, T0, f.lat, f.lon, ha, stage)
        roll = rng.random()
        lat, lon, ha2, stage2 = f.lat, f.lon, ha, stage
        if roll < 0.10:
            ha2 = round(ha * 1.3 + 1, 1)
        elif roll < 0.12:
            stage2 = {"OC": "BH", "BH": "UC", "UC": "UC"}[stage]
        elif roll < 0.13:
            lat = round(lat + 0.01, 4)
        s2 = FireState(f, T0 + timedelta(hours=1), lat, lon, ha2, stage2)
        if i < n:
            first.append(s1)
        if i >= int(n * 0.02):  # the first 2% go out, the last 2% are new
            second.append(s2)
    return first, second[:n]


# --- naive approaches: dict rows, key = agency + name, compare field by field ---------------------
def _diff_dicts(prev: dict[str, dict], cur: dict[str, dict]) -> list[tuple[str, str]]:
    out = []
    for k, row in cur.items():
        old = prev.get(k)
        if old is None:
            out.append(("new", k))
        elif any(old.get(c) != row.get(c) for c in ("lat", "lon", "hectares", "stage_of_control")):
            out.append(("updated", k))
    out.extend(("out", k) for k in prev if k not in cur)
    return out


def naive_csv(body: bytes) -> dict[str, dict]:
    text = body.decode("utf-8-sig")
    reader = csv.DictReader(io.StringIO(text), skipinitialspace=True)
    return {f"{r['agency']}_{r['firename']}": r for r in reader}


def naive_pandas(body: bytes) -> dict[str, dict]:
    import pandas as pd

    df = pd.read_csv(io.BytesIO(body), skipinitialspace=True)
    return {f"{r['agency']}_{r['firename']}": r for r in df.to_dict("records")}


def measure(fn: Callable[[], object], runs: int) -> tuple[float, float, object]:
    """(median seconds, peak MiB, result)."""
    times = []
    result = None
    for _ in range(runs):
        gc.collect()
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    gc.collect()
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return statistics.median(times), peak / 2**20, result


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    first, second = make_states(n)
    legacy1, legacy2 = feeds.legacy_csv(first, 9), feeds.legacy_csv(second, 9)
    wfs_csv2 = feeds.wfs_csv(second)
    wfs_json2 = feeds.wfs_geojson(second, T0)
    tracked_l = parse("legacy-csv", legacy1, 2026).fires
    tracked_w = {}
    for kind, body in (("wfs-csv", feeds.wfs_csv(first)),):
        tracked_w = parse(kind, body, 2026).fires
    snap = T0 + timedelta(hours=1)

    def ours(kind: str, body: bytes, tracked: dict) -> Callable[[], object]:
        def run():
            parsed = parse(kind, body, 2026)
            changes, _, _ = detect_changes(tracked, parsed.fires, snap)
            return changes
        return run

    rows: list[tuple[str, str, float, float, int]] = []
    t, mem, ch = measure(ours("legacy-csv", legacy2, tracked_l), runs)
    rows.append(("emberwatch parse_feed + detect_changes", "legacy CSV", t, mem, len(ch)))
    from services.ingestor.handlers import Handlers

    def with_events():
        changes = ours("legacy-csv", legacy2, tracked_l)()
        return [Handlers._event(None, c) for c in changes]  # type: ignore[arg-type]

    t, mem, ch = measure(with_events, runs)
    rows.append(("emberwatch ... + FireObserved.create per change", "legacy CSV", t, mem, len(ch)))
    prev_csv = naive_csv(legacy1)
    t, mem, ch = measure(lambda: _diff_dicts(prev_csv, naive_csv(legacy2)), runs)
    rows.append(("naive csv.DictReader + dict diff", "legacy CSV", t, mem, len(ch)))
    try:
        import pandas  # noqa: F401

        prev_pd = naive_pandas(legacy1)
        t, mem, ch = measure(lambda: _diff_dicts(prev_pd, naive_pandas(legacy2)), runs)
        rows.append(("naive pandas.read_csv + row-by-row dict diff", "legacy CSV", t, mem, len(ch)))
    except ImportError:
        rows.append(("naive pandas (not installed)", "legacy CSV", float("nan"), float("nan"), 0))
    t, mem, ch = measure(ours("wfs-csv", wfs_csv2, tracked_w), runs)
    rows.append(("emberwatch parse_feed + detect_changes", "WFS CSV", t, mem, len(ch)))
    t, mem, ch = measure(ours("wfs-geojson", wfs_json2, tracked_w), runs)
    rows.append(("emberwatch parse_feed + detect_changes", "WFS GeoJSON", t, mem, len(ch)))

    table = Table(title=f"Parse + diff of a {n:,}-fire snapshot (median of {runs}; peak by tracemalloc)")
    for col in ("approach", "format", "seconds", "peak MiB", "changes", "vs 0.5 s budget"):
        table.add_column(col)
    for name, fmt, t, mem, nch in rows:
        ok = "[green]ok[/]" if t < 0.5 else "[red]over[/]"
        table.add_row(name, fmt, f"{t:.3f}", f"{mem:.1f}", str(nch), ok if t == t else "-")
    Console(width=150).print(table)
    print(f"bytes: legacy {len(legacy2):,}, WFS CSV {len(wfs_csv2):,}, GeoJSON {len(wfs_json2):,}")


if __name__ == "__main__":
    main()
