"""Pure logic of the console: roles from decisions, predictions in words, the shadow's progress
parsed from the gatekeeper's metrics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from emberwatch.contracts import ModelCandidate, ModelDecision
from emberwatch.contracts.events import SplitCounts
from services.console.predictions import TilePrediction
from services.console.shadow_progress import parse_progress
from services.console.view import ConsoleView

T0 = datetime(2026, 7, 1, tzinfo=UTC)


def decision(version: str, kind: str, champion: str | None, minutes: int, refused: bool = False,
             model: str = "m", product: str = "mapbox") -> ModelDecision:
    d = ModelDecision.create(producer="test", model_name=model, candidate_version=version, champion_version=champion,
                             decision=kind, reason="r", refused=refused, product=product)
    return d.model_copy(update={"occurred_at": T0 + timedelta(minutes=minutes)})


def candidate(version: str, minutes: int, model: str = "m", product: str = "mapbox") -> ModelCandidate:
    c = ModelCandidate.create(producer="test", model_name=model, version=version, run_id="a" * 32,
                              artifact_uri="runs:/x/triton", dataset_digest="d", product=product,
                              counts={"train": SplitCounts(wildfire=1, nowildfire=1)}, metrics={})
    return c.model_copy(update={"occurred_at": T0 + timedelta(minutes=minutes)})


def view_of(*events) -> ConsoleView:
    view = ConsoleView()
    for e in events:
        add = view.add_decision if isinstance(e, ModelDecision) else view.add_candidate
        add(e)
    return view


def test_roles_follow_promotions_rollbacks_and_the_waiting_candidate() -> None:
    view = view_of(candidate("1", 0), decision("1", "promoted", None, 1),
                   candidate("2", 2), decision("2", "promoted", "1", 3),
                   candidate("3", 4))
    assert view.roles() == {"champion": "2", "challenger": "3", "previous": "1"}
    # a rollback to 1: the champion is 1 again and nothing before it is known
    view.add_decision(decision("2", "rolled_back", "1", 5))
    assert view.roles() == {"champion": "1", "challenger": "3", "previous": None}
    # a refused command changes nothing; a rejection ends the challenger's wait
    view.add_decision(decision("3", "promoted", "1", 6, refused=True))
    assert view.roles()["champion"] == "1"
    view.add_decision(decision("3", "rejected", "1", 7))
    assert view.roles() == {"champion": "1", "challenger": None, "previous": None}


def test_a_prediction_in_words_and_its_disagreement() -> None:
    both = TilePrediction(("3", "4"), (0.91, 0.42), generation=0)
    assert both.view() == {"champion": {"version": "3", "wildfire": 0.91, "label": "wildfire"},
                           "challenger": {"version": "4", "wildfire": 0.42, "label": "nowildfire"},
                           "disagree": True}
    alone = TilePrediction(("3",), (0.5,), generation=0)
    assert alone.view()["challenger"] is None and alone.view()["champion"]["label"] == "wildfire"
    assert not alone.disagree
    assert not TilePrediction(("3", "4"), (0.1, 0.2), generation=0).disagree


METRICS = """
# TYPE emberwatch_gatekeeper_gate_minimum_pairs gauge
emberwatch_gatekeeper_gate_minimum_pairs{label="all"} 200.0
emberwatch_gatekeeper_gate_minimum_pairs{label="wildfire"} 50.0
emberwatch_gatekeeper_gate_minimum_pairs{label="nowildfire"} 50.0
# TYPE emberwatch_model_shadow_class_pairs gauge
emberwatch_model_shadow_class_pairs{champion="3",label="wildfire",model="m",version="4"} 41.0
emberwatch_model_shadow_class_pairs{champion="3",label="nowildfire",model="m",version="4"} 79.0
# TYPE emberwatch_model_shadow_started_timestamp_seconds gauge
emberwatch_model_shadow_started_timestamp_seconds{champion="3",model="m",version="4"} 1.7e9
# TYPE emberwatch_model_shadow_agreement gauge
emberwatch_model_shadow_agreement{champion="3",model="m",source="test",version="4"} 0.93
"""


def test_the_shadow_progress_is_read_from_the_gatekeepers_metrics() -> None:
    progress = parse_progress(METRICS)
    assert progress["minimums"] == {"all": 200, "wildfire": 50, "nowildfire": 50}
    assert progress["shadow"] == {"model_name": "m", "challenger": "4", "champion": "3", "started_at": 1.7e9,
                                  "product": None, "product_title": None,
                                  "pairs": {"all": 120, "wildfire": 41, "nowildfire": 79},
                                  "agreement": {"test": 0.93}}
    no_shadow = parse_progress(METRICS.split("# TYPE emberwatch_model_shadow_class_pairs")[0])
    assert no_shadow["shadow"] is None and no_shadow["minimums"]["all"] == 200


def test_each_product_line_has_its_own_shadow_named_with_the_product_its_model_sees() -> None:
    sentinel2 = METRICS.replace('model="m"', 'model="m-sentinel2-swir"').replace("1.7e9", "1.8e9")
    both = METRICS + "\n".join(line for line in sentinel2.splitlines() if line.startswith("emberwatch_model"))
    progress = parse_progress(both, base_model="m")
    assert [(s["model_name"], s["product"], s["product_title"]) for s in progress["shadows"]] == [
        ("m-sentinel2-swir", "sentinel2-swir", "Sentinel-2 SWIR"), ("m", "mapbox", "Mapbox")]
    assert progress["shadow"]["model_name"] == "m-sentinel2-swir"  # the newest


def test_roles_are_kept_per_product_line_and_versions_of_two_lines_do_not_mix() -> None:
    s2 = {"model": "m-sentinel2-swir", "product": "sentinel2-swir"}
    view = view_of(candidate("1", 0), decision("1", "promoted", None, 1),
                   candidate("1", 2, **s2), decision("1", "promoted", None, 3, **s2), candidate("2", 4, **s2))
    assert view.roles() == {"champion": "1", "challenger": None, "previous": None}  # the Mapbox line as before
    assert view.roles("sentinel2-swir") == {"champion": "1", "challenger": "2", "previous": None}
    assert view.candidate("1", "sentinel2-swir").model_name == s2["model"] and view.candidate("1").model_name == "m"
    models = view.models()
    assert [(x["product"], x["product_title"], x["champion"], x["challenger"]) for x in models["lines"]] == [
        ("mapbox", "Mapbox", "1", None), ("sentinel2-swir", "Sentinel-2 SWIR", "1", "2")]
    assert {d["product_title"] for d in models["decisions"]} == {"Mapbox", "Sentinel-2 SWIR"}
