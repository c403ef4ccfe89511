"""Model-quality figures per version: confusion counts, P(wildfire) histogram, PSI, shadow agreement;
and the gatekeeper's hooks that need no Triton (restart, no champion, champion unreachable)."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from prometheus_client import REGISTRY

from emberwatch.common.tile_store import TileStore
from emberwatch.common.triton_client import png_bytes
from emberwatch.contracts.events import TileReady
from services.gatekeeper.gatekeeper import Gatekeeper
from services.gatekeeper.record_quality import ModelQuality, agreement, outcome
from services.gatekeeper.serving.repository import write_serving
from services.gatekeeper.settings import GatekeeperSettings
from services.gatekeeper.shadow_state import Pair, Shadow


def value(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def model() -> str:
    return f"q-{uuid.uuid4().hex[:8]}"  # own label values: tests do not see each other's samples


def test_confusion_outcome_and_agreement_at_the_threshold():
    assert [outcome(1, 0.9), outcome(1, 0.1), outcome(0, 0.5), outcome(0, 0.49)] == ["tp", "fn", "fp", "tn"]
    assert agreement(0.7, 0.5) and agreement(0.1, 0.3) and not agreement(0.49, 0.5)


def test_scored_labelled_tiles_are_counted_per_version_and_source(tmp_path):
    q = ModelQuality(tmp_path, m := model())
    q.observe("3", [1, 1, 0, 0, 1], [0.95, 0.2, 0.6, 0.05, 0.55], "live")
    q.observe("3", [1], [0.9], "test")
    q.observe("4", [0], [0.1], "live")
    counts = {o: value("emberwatch_model_predictions_total", model=m, version="3", source="live", outcome=o)
              for o in ("tp", "fp", "fn", "tn")}
    assert counts == {"tp": 2, "fp": 1, "fn": 1, "tn": 1}
    # PromQL recall tp/(tp+fn) = 2/3, precision tp/(tp+fp) = 2/3
    assert value("emberwatch_model_predictions_total", model=m, version="3", source="test", outcome="tp") == 1
    assert value("emberwatch_model_predictions_total", model=m, version="4", source="live", outcome="tn") == 1
    hist = dict(model=m, version="3", source="live")
    assert value("emberwatch_model_wildfire_probability_count", **hist) == 5
    assert value("emberwatch_model_wildfire_probability_bucket", **hist, le="0.1") == 1
    assert value("emberwatch_model_wildfire_probability_bucket", **hist, le="0.6") == 4
    assert value("emberwatch_model_wildfire_probability_bucket", **hist, le="1.0") == 5
    assert value("emberwatch_model_wildfire_probability_sum", **hist) == pytest.approx(2.35)


def test_psi_is_exported_once_the_live_window_is_large_enough_and_tracks_a_shift(tmp_path):
    rng = np.random.default_rng(0)
    q = ModelQuality(tmp_path, m := model(), window=300, min_live=200)
    q.set_reference("5", rng.beta(2, 5, 400))
    assert q.reference("5") is not None and sum(q.reference("5")) == 400
    assert ModelQuality(tmp_path, m).reference("5") == q.reference("5")  # stored: survives a restart
    labels = dict(model=m, version="5")

    q.observe("5", [0] * 150, rng.beta(2, 5, 150).tolist(), "live")
    assert REGISTRY.get_sample_value("emberwatch_model_psi", labels) is None  # 150 < min_live
    assert value("emberwatch_model_live_window_samples", **labels) == 150
    q.observe("5", [0] * 150, rng.beta(2, 5, 150).tolist(), "live")
    stable = value("emberwatch_model_psi", **labels)
    assert 0 <= stable < 0.15

    q.observe("5", [1] * 300, rng.beta(5, 2, 300).tolist(), "live")  # the window now holds only these
    assert value("emberwatch_model_live_window_samples", **labels) == 300
    assert value("emberwatch_model_psi", **labels) > 0.2

    q.observe("6", [0] * 250, rng.beta(2, 5, 250).tolist(), "live")  # no reference: no PSI
    assert REGISTRY.get_sample_value("emberwatch_model_psi", dict(model=m, version="6")) is None
    q.observe("5", [0], [0.5], "test")  # test scores never enter the live window
    assert value("emberwatch_model_live_window_samples", **labels) == 300

    q.retain(["6"])  # version 5 no longer served: its drift series goes away
    assert REGISTRY.get_sample_value("emberwatch_model_psi", labels) is None
    assert REGISTRY.get_sample_value("emberwatch_model_live_window_samples", labels) is None
    assert value("emberwatch_model_live_window_samples", model=m, version="6") == 250


def test_shadow_pairs_agreement_and_start_time(tmp_path):
    q = ModelQuality(tmp_path, m := model())
    shadow = Shadow(model_name=m, candidate_version="8", champion_version="7", run_id="r", started_at=1000.0)
    test_pairs = [Pair("a", 1, 0.9, 0.8, "test"), Pair("b", 0, 0.2, 0.7, "test"),
                  Pair("c", 1, 0.3, 0.9, "test"), Pair("d", 0, 0.1, 0.2, "test")]
    for p in test_pairs:
        shadow = shadow.with_pair(p)
    q.shadow_pairs(shadow, test_pairs)
    live = Pair("e", 1, 0.8, 0.9, "live")
    shadow = shadow.with_pair(live)
    q.shadow_pairs(shadow, [live])

    labels = dict(model=m, version="8", champion="7")
    assert value("emberwatch_model_shadow_agreement", **labels, source="test") == 0.5
    assert value("emberwatch_model_shadow_agreement", **labels, source="live") == 1.0
    assert value("emberwatch_model_shadow_pairs_total", **labels, source="test", agreement="agree") == 2
    assert value("emberwatch_model_shadow_pairs_total", **labels, source="test", agreement="disagree") == 2
    assert value("emberwatch_model_shadow_pairs_total", **labels, source="live", agreement="agree") == 1
    assert value("emberwatch_model_shadow_started_timestamp_seconds", **labels) == 1000.0
    # both versions' own quality is counted from the pairs
    assert value("emberwatch_model_predictions_total", model=m, version="8", source="test", outcome="tp") == 2
    assert value("emberwatch_model_predictions_total", model=m, version="7", source="test", outcome="fn") == 1
    assert value("emberwatch_model_live_window_samples", model=m, version="7") == 1

    q.shadow_ended()
    assert REGISTRY.get_sample_value("emberwatch_model_shadow_started_timestamp_seconds", labels) is None
    assert REGISTRY.get_sample_value("emberwatch_model_shadow_agreement", {**labels, "source": "test"}) is None
    assert value("emberwatch_model_shadow_pairs_total", **labels, source="test", agreement="agree") == 2


def settings(tmp_path, name: str) -> GatekeeperSettings:
    # nothing listens on port 9: Triton and MLflow are unreachable
    return GatekeeperSettings(state_dir=tmp_path / "state", triton_model_repository=tmp_path / "repo",
                              triton_url="127.0.0.1:9", mlflow_tracking_uri="http://127.0.0.1:9",
                              model_name=name, gatekeeper_triton_timeout_s=2)


def live_tile(uri: str, tile_id: str = "cd" * 32) -> TileReady:
    return TileReady.create(producer="t", tile_id=tile_id, uri=uri, lat=50, lon=-110, zoom=14, size_px=32,
                            label="wildfire", split="test", fire_key="f", provider="p")


def test_a_restarted_gatekeeper_exports_the_stored_shadow_and_drops_it_once_gone(tmp_path):
    s = settings(tmp_path, m := model())
    first = Gatekeeper(s)
    shadow = Shadow(model_name=m, candidate_version="2", champion_version="1", run_id="r", started_at=1234.0)
    shadow = shadow.with_pair(Pair("a", 1, 0.9, 0.2, "test")).with_pair(Pair("b", 0, 0.1, 0.2, "test"))
    first.shadows.save(shadow)

    again = Gatekeeper(s)  # a restart
    labels = dict(model=m, version="2", champion="1")
    assert value("emberwatch_model_shadow_started_timestamp_seconds", **labels) == 1234.0
    assert value("emberwatch_model_shadow_agreement", **labels, source="test") == 0.5

    again.shadows.clear()  # e.g. promoted by hand from the CLI (another process)
    assert again.on_tile(live_tile(TileStore(s.tile_root).path_for("cd" * 32, "png").as_uri())) == []
    assert REGISTRY.get_sample_value("emberwatch_model_shadow_started_timestamp_seconds", labels) is None


def test_between_shadows_the_champion_scores_live_tiles_and_failures_never_block(tmp_path):
    s = settings(tmp_path, model())
    gk = Gatekeeper(s)
    before = {o: value("emberwatch_gatekeeper_champion_tiles_total", outcome=o)
              for o in ("no_champion", "failed", "disabled")}
    stored = TileStore(s.tile_root).put(png_bytes(np.zeros((32, 32, 3), dtype=np.uint8)), "png")

    def live() -> TileReady:
        return live_tile(stored.uri, stored.tile_id)

    assert gk.on_tile(live()) == []  # no champion yet
    assert value("emberwatch_gatekeeper_champion_tiles_total", outcome="no_champion") == before["no_champion"] + 1

    write_serving(gk.serving.repo, champion="1")
    assert gk.on_tile(live()) == []  # Triton unreachable: counted, not raised
    missing = TileStore(s.tile_root).path_for("ef" * 32, "png")
    assert gk.on_tile(live_tile(missing.as_uri(), "ef" * 32)) == []  # tile gone
    assert value("emberwatch_gatekeeper_champion_tiles_total", outcome="failed") == before["failed"] + 2

    off = Gatekeeper(settings(tmp_path, s.model_name).model_copy(update={"gatekeeper_quality_score_champion": False}))
    assert off.on_tile(live()) == []
    assert value("emberwatch_gatekeeper_champion_tiles_total", outcome="disabled") == before["disabled"] + 1
