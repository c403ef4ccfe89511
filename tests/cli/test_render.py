"""The CLI's pure rendering functions: data in, rich renderables out (text from data as rich Text: see
tests/security/test_untrusted_text.py)."""

from __future__ import annotations

import io
from datetime import datetime
from types import SimpleNamespace

from rich.console import Console

from emberwatch.cli import render
from emberwatch.contracts.events import Evidence, MetricDelta
from emberwatch.operations.show_models import TritonView, VersionRow
from emberwatch.stack.manage import PartStatus


def text_of(renderable) -> str:
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def decision(**evidence):
    ev = Evidence(n=120, n_wildfire=50, champion_only_correct=3, challenger_only_correct=11, p_value=0.057,
                  deltas=[MetricDelta(metric="recall", champion=0.80, challenger=0.86, delta=0.06,
                                      ci_low=0.01, ci_high=0.11, confidence=0.95),
                          MetricDelta(metric="accuracy", challenger=0.9)], **evidence)
    return SimpleNamespace(candidate_version="4", decision="promoted", champion_version="3",
                           reason="shadow gate passed", evidence=ev)


def test_evidence_text_has_n_p_value_and_the_ci():
    text = render.evidence_text(decision()).plain
    assert text.splitlines()[0] == "version 4: promoted (champion then: 3)"
    assert "reason: shadow gate passed" in text
    assert "paired samples n=120 (wildfire 50, fire-free 70)" in text
    assert "champion-only 3, challenger-only 11" in text
    assert "p-value=0.057" in text
    assert "  recall: 0.860 (Δ +0.060, 95% CI [+0.010, +0.110])" in text
    assert text.endswith("  accuracy: 0.900")  # one rate, no difference to show


def test_evidence_text_shows_the_candidates_warnings():
    d = decision()
    d.warnings = ["possible shortcut: a location-only classifier scores 93.0%"]
    assert render.evidence_text(d).plain.endswith("warning: possible shortcut: a location-only classifier scores 93.0%")


def test_evidence_text_without_a_champion():
    d = decision()
    d.champion_version = None
    assert "(champion then: none)" in render.evidence_text(d).plain


def test_models_table_has_the_columns_and_rows():
    rows = [VersionRow(version="2", aliases=("champion",), created=datetime(2026, 5, 1, 12, 30), run_id="abcdef123456",
                       metrics={"val_accuracy": 0.91234, "val_recall": 0.8, "gate_n": 140.0, "leakage_warning": 1.0},
                       backbone="imagenet"),
            VersionRow(version="3", aliases=("challenger",), created=datetime(2026, 5, 2, 8, 0), run_id=None)]
    triton = TritonView(url="http://triton", public_model="wildfire", heads_ready=("2",))
    table = render.models_table("wildfire", rows, triton)
    assert [c.header for c in table.columns] == list(render.MODELS_COLUMNS) == [
        "version", "product", "aliases", "created", "val_accuracy", "val_recall", "test_recall", "shadow n",
        "in Triton", "backbone", "leakage", "run"]
    assert str(table.title) == "wildfire in MLflow: sees Mapbox"
    assert table.row_count == 2
    out = text_of(table)
    assert "2026-05-01 12:30" in out and "0.912" in out and "140" in out and "abcdef12" in out
    assert "loaded" in out and "imagenet" in out and "WARN" in out
    unreachable = render.models_table("wildfire", rows, TritonView(url="u", public_model="w", error="refused"))
    assert "?" in text_of(unreachable)


def test_a_model_lines_table_says_the_product_its_model_sees():
    rows = [VersionRow(version="3", aliases=("champion",), created=datetime(2026, 7, 4, 9, 0), run_id="r1")]
    table = render.models_table("wildfire-sentinel2-swir", rows, None, product="sentinel2-swir")
    assert str(table.title) == "wildfire-sentinel2-swir in MLflow: sees Sentinel-2 SWIR"
    [line] = [row for row in text_of(table).splitlines() if "sentinel2-swir" in row and "2026-07-04" in row]
    assert [cell.strip() for cell in line.split("│")][1:3] == ["3", "sentinel2-swir"]
    assert "n/a" in line  # its Triton heads were not asked for: not "-" (which says "not loaded")


def test_triton_summary():
    t = TritonView(url="http://t", public_model="wildfire", public_ready=True, heads_ready=("1", "2"))
    assert render.triton_summary(t).plain == ("Triton at http://t: wildfire ready, backbone not loaded, "
                                        "head versions loaded: 1, 2")


def test_stack_status_table_and_whether_all_are_up():
    up = PartStatus(name="kafka", address="127.0.0.1:9092", pid=42, running=True, healthy=True)
    down = PartStatus(name="mlflow", address="127.0.0.1:5000", pid=None, running=False, healthy=False)
    table, all_up = render.stack_status_table([up])
    assert all_up and [c.header for c in table.columns] == ["part", "state", "address", "pid"]
    table, all_up = render.stack_status_table([up, down])
    assert not all_up
    out = text_of(table)
    assert "kafka" in out and "42" in out and "down" in out and " - " in out


def test_demo_progress_table_and_summary_line():
    tally = SimpleNamespace(fires={"a", "b"}, fire_events={"new": 2}, tile_ids={"t"}, tiles={"ok": 1},
                            candidates=[SimpleNamespace(version="1", backbone_weights="imagenet")],
                            decisions=[SimpleNamespace(candidate_version="1", decision="promoted")],
                            alerts=[1, 2, 3], duplicate_events=4)
    out = text_of(render.demo_progress_table(tally))
    assert "fires observed" in out and "2 ({'new': 2})" in out and "v1:promoted" in out
    result = SimpleNamespace(tally=tally, discord_posts=3, seconds=61.4, seconds_to_goal=None)
    line = render.demo_summary_line(result).plain
    assert line == "Discord posts: 3; duplicate events seen: 4; backbone: imagenet; took 61s"
    result.seconds_to_goal = 50.2
    assert render.demo_summary_line(result).plain.endswith(" (50s to the shadow decision)")


def test_fmt_metric():
    assert render.fmt_metric(None) == "-"
    assert render.fmt_metric(0.12345) == "0.123"


def test_a_first_models_floor_shows_its_test_tiles_and_bounds_not_pairs():
    from emberwatch.contracts.events import ModelDecision

    d = ModelDecision.create(
        producer="t", model_name="m", candidate_version="2", champion_version=None, decision="promoted",
        reason="first model", basis="floor",
        evidence=Evidence(n=97, n_wildfire=50, n_fire_free=47, rule="floor", method="Wilson",
                          deltas=[MetricDelta(metric="wildfire_recall", challenger=0.8, ci_low=0.693,
                                              ci_high=0.877, confidence=0.9)]))
    text = render.evidence_text(d).plain
    assert "test tiles n=97 (wildfire 50, fire-free 47)" in text and "discordant" not in text
    assert "wildfire_recall: 0.800 (90% CI [0.693, 0.877])" in text


def test_leakage_text_lists_each_candidates_check():
    ok = SimpleNamespace(version="1", leakage=SimpleNamespace(cnn_accuracy=0.9, location_accuracy=0.55,
                                                              statistics_accuracy=0.6, split="test", n=40,
                                                              margin=0.05, warning=None))
    warn = SimpleNamespace(version="2", leakage=SimpleNamespace(cnn_accuracy=0.9, location_accuracy=0.88,
                                                                statistics_accuracy=None, split="val", n=30,
                                                                margin=0.05, warning="possible shortcut"))
    text = render.leakage_text([ok, SimpleNamespace(version="3", leakage=None), warn]).plain
    assert text.splitlines() == [
        "v1: CNN 0.900, location only 0.550, hand statistics 0.600 (test, n=40) — no shortcut within 5%",
        "v2: CNN 0.900, location only 0.880, hand statistics - (val, n=30) — WARNING: possible shortcut"]
