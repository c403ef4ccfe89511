"""Write the Grafana dashboards (JSON) from one concise description. Run after changing panels:

    .venv/bin/python monitoring/grafana/build_dashboards.py

tests/monitoring checks that every panel's query uses a metric the code exports.
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).parent / "dashboards"

DASHBOARDS: dict[str, dict] = {
    "pipeline": {
        "title": "Emberwatch — pipeline",
        "panels": [
            # Broker traffic from FastStream's Prometheus middleware: app_name is the service,
            # handler the topic consumed, destination the topic published to.
            ("Records received /s by service and topic",
             "sum by (app_name, handler) (rate(faststream_received_messages_total[5m]))", "ops"),
            ("Events published /s by topic",
             'sum by (destination) (rate(faststream_published_messages_total{status="success"}[5m]))', "ops"),
            ("Batch handling p95 (one fetched batch of records)",
             "histogram_quantile(0.95, sum(rate(faststream_received_processed_messages_duration_seconds_bucket[5m])) "
             "by (le, app_name, handler))", "s"),
            ("Batches not acknowledged /s by service and status (a failed DLQ write: the batch comes back)",
             'sum by (app_name, handler, status) (rate(faststream_received_processed_messages_total'
             '{status!="acked"}[5m]))', "ops"),
            ("Consumer lag", "max by (service, topic) (emberwatch_consumer_lag)", "short"),
            ("Fire to prediction: p50 and p95 (first seen by the ingestor → champion's prediction)",
             ["histogram_quantile(0.5, sum by (le) (rate(emberwatch_fire_to_prediction_seconds_bucket[15m])))",
              "histogram_quantile(0.95, sum by (le) (rate(emberwatch_fire_to_prediction_seconds_bucket[15m])))"],
             "s", {"legends": ["p50", "p95"]}),
            ("DLQ messages (15m)", "sum by (service, topic, reason) "
             "(increase(emberwatch_dlq_messages_total[15m]))", "short"),
            ("Handler errors /s by kind",
             "sum by (service, kind) (rate(emberwatch_handler_errors_total[5m]))", "ops"),
            ("Services up", "emberwatch_service_up", "short"),
            ("Console: events read /s by topic and outcome",
             "sum by (topic, outcome) (rate(emberwatch_messages_consumed_total[5m]))", "ops"),
            # each service's own figures
            ("Ingestor: age of the newest good feed snapshot",
             "max by (source) (emberwatch_ingestor_snapshot_age_seconds)", "s"),
            ("Ingestor: rows rejected by reason (1h)",
             "sum by (source, reason) (increase(emberwatch_ingestor_rows_rejected_total[1h]))", "short"),
            ("Tiler: Mapbox requests /s by API and status",
             "sum by (api, status) (rate(emberwatch_tiler_requests_total[5m]))", "ops"),
            ("Tiler: tiles stored (by label, new or known) and rejected (by reason) /s",
             ["sum by (label, outcome) (rate(emberwatch_tiler_tiles_stored_total[5m]))",
              "sum by (reason) (rate(emberwatch_tiler_tiles_rejected_total[5m]))"], "ops"),
            ("Trainer: trainings by outcome (6h)",
             "sum by (outcome) (increase(emberwatch_trainer_trainings_total[6h]))", "short"),
            ("Trainer: embeddings computed vs cache hits /s",
             ["sum (rate(emberwatch_trainer_embeddings_computed_total[5m]))",
              "sum (rate(emberwatch_trainer_embedding_cache_hits_total[5m]))"], "ops",
             {"legends": ["computed", "cache hits"]}),
            ("Notifier: webhook posts by kind and outcome (1h)",
             "sum by (kind, outcome) (increase(emberwatch_notifier_posts_total[1h]))", "short"),
        ],
    },
    "models": {
        "title": "Emberwatch — model quality per version",
        "variables": [
            {"name": "model", "type": "custom", "default": "emberwatch-resnet50"},
            {"name": "version", "type": "query",
             "query": 'label_values(emberwatch_model_predictions_total{model="$model"}, version)'},
        ],
        "panels": [
            ("Shadow agreement: challenger (version) vs champion, by source",
             'max by (version, champion, source) (emberwatch_model_shadow_agreement{model="$model"})',
             "percentunit"),
            ("Shadow pairs: challenger in shadow per model line (total) and pairs by source and agreement",
             ["max by (product) (emberwatch_gatekeeper_shadow_pairs)",
              'sum by (version, source, agreement) (emberwatch_model_shadow_pairs_total{model="$model"})'],
             "short"),
            ("Live recall of the wildfire class per version (6h window)",
             'sum by (version) (increase(emberwatch_model_predictions_total{model="$model", version=~"$version", '
             'source="live", outcome="tp"}[6h])) / sum by (version) (increase(emberwatch_model_predictions_total'
             '{model="$model", version=~"$version", source="live", outcome=~"tp|fn"}[6h]))', "percentunit"),
            ("Live precision of the wildfire class per version (6h window)",
             'sum by (version) (increase(emberwatch_model_predictions_total{model="$model", version=~"$version", '
             'source="live", outcome="tp"}[6h])) / sum by (version) (increase(emberwatch_model_predictions_total'
             '{model="$model", version=~"$version", source="live", outcome=~"tp|fp"}[6h]))', "percentunit"),
            ("Recall on the test split per version (since the gatekeeper started)",
             'sum by (version) (emberwatch_model_predictions_total{model="$model", version=~"$version", '
             'source="test", outcome="tp"}) / sum by (version) (emberwatch_model_predictions_total'
             '{model="$model", version=~"$version", source="test", outcome=~"tp|fn"})', "percentunit"),
            ("Live tiles scored /s per version",
             ['sum by (version) (rate(emberwatch_model_predictions_total{model="$model", version=~"$version", '
              'source="live"}[5m]))',
              "sum by (outcome) (rate(emberwatch_gatekeeper_champion_tiles_total[5m]))"], "ops"),
            ("Detections: live tiles the champion called a wildfire (per hour), and people's labels",
             ["sum(increase(emberwatch_gatekeeper_detections_total[1h]))",
              "sum by (label) (increase(emberwatch_gatekeeper_human_labels_total[1h]))"], "short",
             {"legends": ["detections", "labelled {{label}}"]}),
            ("Live P(wildfire) distribution (selected versions)",
             'sum by (le) (increase(emberwatch_model_wildfire_probability_bucket{model="$model", '
             'version=~"$version", source="live"}[10m]))', "short", {"type": "heatmap"}),
            ("Live P(wildfire) quantiles per version (p10, p50, p90; 1h)",
             [f"histogram_quantile({q}, sum by (le, version) (rate(emberwatch_model_wildfire_probability_bucket"
              f'{{model="$model", version=~"$version", source="live"}}[1h])))' for q in ("0.1", "0.5", "0.9")],
             "percentunit", {"legends": ["p10 v{{version}}", "p50 v{{version}}", "p90 v{{version}}"]}),
            ("Drift: PSI of live P(wildfire) vs the test split (alert > 0.2)",
             'max by (version) (emberwatch_model_psi{model="$model", version=~"$version"})', "short",
             {"threshold": 0.2}),
            ("Time in shadow per challenger",
             'time() - max by (version, champion) (emberwatch_model_shadow_started_timestamp_seconds'
             '{model="$model"})', "s"),
            ("Gatekeeper decisions by kind (24h)",
             "sum by (decision) (increase(emberwatch_gatekeeper_decisions_total[24h]))", "short"),
        ],
    },
    "serving": {
        "title": "Emberwatch — serving (Triton)",
        "panels": [
            ("Inference requests /s by model and version",
             "sum by (model, version) (rate(nv_inference_request_success[1m]))", "ops"),
            ("Failed inference requests /s",
             "sum by (model, version) (rate(nv_inference_request_failure[1m]))", "ops"),
            ("Average request latency (ms)",
             "sum by (model) (rate(nv_inference_request_duration_us[1m])) / "
             "clamp_min(sum by (model) (rate(nv_inference_request_success[1m])), 1e-9) / 1000", "ms"),
            ("Average queue time (ms)",
             "sum by (model) (rate(nv_inference_queue_duration_us[1m])) / "
             "clamp_min(sum by (model) (rate(nv_inference_request_success[1m])), 1e-9) / 1000", "ms"),
            ("Batch executions /s (dynamic batching)",
             "sum by (model) (rate(nv_inference_exec_count[1m]))", "ops"),
        ],
    },
}


DATASOURCE = {"type": "prometheus", "uid": "prometheus"}


def panel(i: int, title: str, expr: str | list[str], unit: str, options: dict | None = None) -> dict:
    """One panel; ``expr`` may be several queries; options: type (heatmap), legends, threshold."""
    options = options or {}
    exprs = [expr] if isinstance(expr, str) else expr
    kind = options.get("type", "timeseries")
    targets = []
    for n, e in enumerate(exprs):
        target = {"refId": chr(ord("A") + n), "expr": e, "datasource": DATASOURCE}
        if kind == "heatmap":
            target.update(format="heatmap", legendFormat="{{le}}")
        elif "legends" in options:
            target["legendFormat"] = options["legends"][n]
        targets.append(target)
    defaults: dict = {"unit": unit}
    if "threshold" in options:
        defaults["thresholds"] = {"mode": "absolute", "steps": [{"color": "green", "value": None},
                                                                {"color": "red", "value": options["threshold"]}]}
        defaults["custom"] = {"thresholdsStyle": {"mode": "line"}}
    out = {
        "id": i + 1,
        "type": kind,
        "title": title,
        "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": 12, "x": 12 * (i % 2), "y": 8 * (i // 2)},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "targets": targets,
    }
    if kind == "heatmap":
        out["options"] = {"calculate": False, "yAxis": {"unit": "short"}, "cellGap": 1,
                          "color": {"scheme": "Oranges", "mode": "scheme"}}
    return out


def variable(spec: dict) -> dict:
    """A templating variable: ``custom`` with a default value, or ``query`` (label_values, all/multi)."""
    if spec["type"] == "custom":
        value = spec["default"]
        return {"name": spec["name"], "type": "custom", "query": value, "allowCustomValue": True,
                "current": {"text": value, "value": value},
                "options": [{"selected": True, "text": value, "value": value}]}
    return {"name": spec["name"], "type": "query", "datasource": DATASOURCE,
            "definition": spec["query"], "query": {"query": spec["query"], "refId": "A"},
            "refresh": 2, "includeAll": True, "multi": True, "allValue": ".*", "sort": 3,
            "current": {"text": "All", "value": "$__all"}}


def dashboard(uid: str, spec: dict) -> dict:
    return {
        "uid": f"emberwatch-{uid}",
        "title": spec["title"],
        "tags": ["emberwatch"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": [variable(v) for v in spec.get("variables", [])]},
        "panels": [panel(i, *p) for i, p in enumerate(spec["panels"])],
    }


def main() -> None:
    HERE.mkdir(parents=True, exist_ok=True)
    for uid, spec in DASHBOARDS.items():
        (HERE / f"{uid}.json").write_text(json.dumps(dashboard(uid, spec), indent=2) + "\n")


if __name__ == "__main__":
    main()
