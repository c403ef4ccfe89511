"""Rendering events into embeds: colours per outcome, evidence, links, digests."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from services.notifier.fit_discord_limits import fit_discord_limits
from services.notifier.label_buttons import parse_custom_id
from services.notifier.main import build_app
from services.notifier.render import COLOURS, Links, Renderer
from services.notifier.settings import NotifierSettings
from simulators.discord.app import validate_payload
from tests.services.notifier.helpers import alert, candidate, decision, detection, shown

R = Renderer(Links("http://mlflow:5000", "http://grafana:3000", "emberwatch-models"), "Emberwatch")


def embed(payload: dict) -> dict:
    assert payload["username"] == "Emberwatch"
    assert payload["allowed_mentions"] == {"parse": []}  # an alert text can never ping @everyone
    return payload["embeds"][0]


def test_candidate_links_to_its_run_and_model_version():
    e = embed(R.candidate(candidate("7")))
    assert e["color"] == COLOURS["candidate"]
    assert e["url"] == "http://mlflow:5000/#/models/emberwatch-resnet50/versions/7"
    links = {f["name"]: f["value"] for f in e["fields"]}["Links"]
    assert "http://mlflow:5000/#/runs/run7abc" in links
    assert "val_accuracy: 0.912" in shown({f["name"]: f["value"] for f in e["fields"]}["Validation metrics"])


LEAK = "possible shortcut: a location-only classifier (latitude, longitude) scores 93.0% on the test split"


def test_a_candidates_leakage_check_is_posted_and_its_warning_stands_out():
    clean = {f["name"]: f["value"] for f in embed(R.candidate(candidate("7", leakage={
        "split": "test", "n": 80, "cnn_accuracy": 0.91, "location_accuracy": 0.52, "statistics_accuracy": 0.61,
        "margin": 0.05})))["fields"]}
    assert clean["Leakage check"] == ("CNN 0.910 · location only 0.520 · hand statistics 0.610 (accuracy on test, "
                                      "n = 80): no shortcut within 5%")
    leaky = {f["name"]: f["value"] for f in embed(R.candidate(candidate("8", leakage={
        "split": "test", "n": 80, "cnn_accuracy": 0.95, "location_accuracy": 0.93, "margin": 0.05,
        "warning": LEAK})))["fields"]}
    assert leaky["⚠️ Leakage warning"] == LEAK and "location only 0.930" in leaky["Leakage check"]
    assert "Leakage check" not in {f["name"] for f in embed(R.candidate(candidate("9")))["fields"]}


def test_a_decision_shows_the_candidates_warnings():
    fields = {f["name"]: f["value"] for f in embed(R.decision(decision("promoted", "7", warnings=[LEAK])))["fields"]}
    assert fields["⚠️ Warning"] == LEAK
    assert "⚠️ Warning" not in {f["name"] for f in embed(R.decision(decision("promoted", "7")))["fields"]}


@pytest.mark.parametrize("kind,title", [
    ("promoted", "✅ emberwatch-resnet50 v7 (Mapbox) promoted to champion"),
    ("rejected", "⛔ emberwatch-resnet50 v7 (Mapbox) rejected"),
    ("rolled_back", "↩️ emberwatch-resnet50 (Mapbox) rolled back from v7 to v6"),
])
def test_each_decision_has_its_colour_title_and_reason(kind, title):
    event = decision(kind, "7")
    e = embed(R.decision(event))
    assert e["title"] == title and e["color"] == COLOURS[kind]
    assert shown(e["description"]) == event.reason
    fields = {f["name"]: f["value"] for f in e["fields"]}
    assert shown(fields["Thresholds"]) == "alpha 0.05 · min_n 200 · non_inferiority_margin 0.02"
    assert "[Grafana dashboard](http://grafana:3000/d/emberwatch-models?var-model=emberwatch-resnet50)" \
        in fields["Links"]
    assert e["footer"]["text"].endswith(f"event {event.event_id} · trace {event.trace_id}")


def test_a_decision_without_evidence_or_run_links_to_the_model_version():
    event = decision("rejected", "9").model_copy(update={"run_id": None, "evidence": type(
        decision().evidence)()})
    e = embed(R.decision(event))
    names = [f["name"] for f in e["fields"]]
    assert "Paired samples" not in names and "p-value (exact McNemar, one-sided)" not in names
    assert e["url"].endswith("/#/models/emberwatch-resnet50/versions/9")


def test_a_rollback_names_the_champion_that_serves_again():
    # the gatekeeper's rollback: candidate_version is the champion rolled back, champion_version the
    # previous champion that serves again
    fields = {f["name"]: f["value"] for f in embed(R.decision(decision("rolled_back", "7")))["fields"]}
    assert fields["Champion now"] == "v6 (was v7)"


def test_an_operators_decision_says_who_asked_and_a_refusal_says_so():
    by_hand = embed(R.decision(decision("promoted", "7", requested_by="discord:ops#1", command_id="c1")))
    assert {"name": "Requested by", "value": "discord:ops#1", "inline": True} in by_hand["fields"]
    assert by_hand["title"] == "✅ emberwatch-resnet50 v7 (Mapbox) promoted to champion"
    assert "Requested by" not in [f["name"] for f in embed(R.decision(decision("promoted")))["fields"]]
    refused = decision("rejected", "", reason="rollback refused: there is no previous champion",
                       requested_by="cli:me", command_id="c2", refused=True, run_id=None)
    e = embed(R.decision(refused))
    assert e["title"] == "⛔ emberwatch-resnet50 (Mapbox): an operator's command was refused"
    assert e["description"] == "rollback refused: there is no previous champion"
    assert e["url"].endswith("/#/models/emberwatch-resnet50")  # no version: the model's page


def test_alerts_are_coloured_by_severity_and_show_details():
    for severity in ("critical", "warning", "info"):
        e = embed(R.alert(alert("feed_down", severity, "down", status=503)))
        assert e["color"] == COLOURS[severity]
        assert {"name": "status", "value": "`503`", "inline": True} in e["fields"]


def test_a_huge_digest_still_fits_discord():
    alerts = [alert(f"kind_{i % 40}", "info", "x" * 300) for i in range(500)]
    payload = fit_discord_limits(R.digest(alerts))
    assert validate_payload(payload) is None
    assert payload["embeds"][0]["title"] == "🗞️ Digest: 500 low-priority events"


@pytest.mark.parametrize("url", [None, "", "   ", "discord.com/api/webhooks/1/x"])
def test_the_service_refuses_to_start_without_a_webhook_url_and_never_echoes_it(url, tmp_path):
    settings = NotifierSettings(state_dir=tmp_path,
                                discord_webhook_url=SecretStr(url) if url is not None else None)
    with pytest.raises(RuntimeError) as info:
        build_app(settings)
    assert "EMBERWATCH_DISCORD_WEBHOOK_URL" in str(info.value)
    if url and url.strip():
        assert url not in str(info.value)


def test_a_gate_decision_shows_both_classes_the_rule_and_the_method():
    from emberwatch.contracts.events import Evidence, MetricDelta

    evidence = Evidence(
        n=300, n_wildfire=140, n_fire_free=160, both_correct=250, champion_only_correct=10,
        challenger_only_correct=30, both_wrong=10, p_value=0.0011, rule="superior", alpha=0.0317,
        method="Newcombe hybrid score interval (method 10) per class",
        deltas=[MetricDelta(metric="wildfire_recall", champion=0.8, challenger=0.9, delta=0.1, ci_low=0.04,
                            ci_high=0.16, confidence=0.9366),
                MetricDelta(metric="specificity", champion=0.9, challenger=0.89, delta=-0.01, ci_low=-0.025,
                            ci_high=0.01, confidence=0.9366)],
        thresholds={"alpha": 0.05, "primary_metric": "wildfire_recall"})
    e = embed(R.decision(decision("promoted", "7").model_copy(update={"evidence": evidence})))
    fields = {f["name"]: f["value"] for f in e["fields"]}
    assert fields["Paired samples"] == "n = 300 (140 wildfire, 160 fire-free)"
    assert fields["Rule"] == "superior (alpha at this look 0.0317)"
    assert fields["Method"].startswith("Newcombe")
    assert fields["specificity"] == "Δ -0.010 [-0.025, +0.010] 93.7% CI (0.900 → 0.890)"
    assert "primary_metric wildfire_recall" in shown(fields["Thresholds"])
    assert validate_payload(R.decision(decision("promoted", "7").model_copy(update={"evidence": evidence}))) is None  # Discord accepts it


def test_a_detection_shows_both_models_the_place_and_two_buttons_that_fit_discord():
    tile = "9f" * 32
    payload = Renderer(Links("http://m", "http://g", "d", "http://c:8090/"), "Emberwatch").detection(
        detection(tile, challenger_version="8", challenger_probability=0.3))
    embed = payload["embeds"][0]
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert "sees a wildfire at ab:HWF-042" in embed["title"]
    assert fields["Place"] == "55.1234, -110.5678" and fields["Challenger in shadow"] == "v8: P(wildfire) 0.30"
    assert fields["Image"].startswith(f"[on the console](http://c:8090/tiles/{tile})") and "© Mapbox" in fields["Image"]
    assert f"/label {tile} fire|no-fire" in fields["Your answer"]
    assert fields["Fire"] == "[on the console's map](http://c:8090/#fire=ab%3AHWF-042)"  # the key URL-encoded
    buttons = [b for row in payload["components"] for b in row["components"]]
    assert [parse_custom_id(b["custom_id"]) for b in buttons] == [(tile, "wildfire"), (tile, "nowildfire")]
    assert all(len(b["custom_id"]) <= 100 for b in buttons)
    assert fit_discord_limits(payload) == payload and validate_payload(payload) is None  # fits as it is
    assert parse_custom_id("emberwatch:label:xyz:wildfire") is None
    no_console = Renderer(Links("http://m", "http://g", "d"), "E").detection(detection(tile))
    assert not {"Image", "Fire"} & {f["name"] for f in no_console["embeds"][0]["fields"]}


S2 = "emberwatch-resnet50-sentinel2-swir"
SENSED = datetime(2026, 7, 3, 18, 42, 7, tzinfo=UTC)


def test_candidates_decisions_and_detections_name_the_product_their_model_sees():
    e = embed(R.candidate(candidate("3", model=S2, product="sentinel2-swir")))
    assert shown(e["title"]) == f"🧪 New candidate {S2} v3 (Sentinel-2 SWIR)"
    e = embed(R.decision(decision("promoted", "3", model=S2, product="sentinel2-swir")))
    assert shown(e["title"]) == f"✅ {S2} v3 (Sentinel-2 SWIR) promoted to champion"
    e = embed(R.decision(decision("rolled_back", "3", model=S2, product="sentinel2-true-colour")))
    assert shown(e["title"]) == f"↩️ {S2} (Sentinel-2 true colour) rolled back from v3 to v6"
    assert "(Mapbox)" in embed(R.candidate(candidate("7")))["title"]  # older events: the Mapbox line


def test_a_sentinel2_detection_says_when_its_scene_was_sensed_and_a_mapbox_one_that_it_has_no_date():
    links = Links("http://m", "http://g", "d", "http://c:8090/")
    s2 = Renderer(links, "E").detection(detection(product="sentinel2-swir", acquired_at=SENSED))
    e = s2["embeds"][0]
    fields = {f["name"]: shown(f["value"]) for f in e["fields"]}
    assert shown(e["title"]).startswith("🔥 Detection: emberwatch-resnet50 v7 (Sentinel-2 SWIR) sees a wildfire")
    assert fields["Imagery"] == "Sentinel-2 SWIR, acquired 2026-07-03 18:42 UTC"
    assert "acquired 2026-07-03 18:42 UTC" in shown(e["description"])
    assert "Copernicus Sentinel" in fields["Image"] and "Mapbox" not in fields["Image"]
    assert validate_payload(s2) is None and fit_discord_limits(s2) == s2
    mapbox = Renderer(links, "E").detection(detection())["embeds"][0]
    fields = {f["name"]: shown(f["value"]) for f in mapbox["fields"]}
    assert fields["Imagery"] == "Mapbox (undated mosaic)" and "acquired" not in mapbox["description"]
