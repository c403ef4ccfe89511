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
            ("Messages handled /s by service and outcome",
             'sum by (service, topic, outcome) (rate(emberwatch_messages_consumed_total[5m]))', "ops"),
            ("Events published /s by topic",
             "sum by (topic) (rate(emberwatch_messages_published_total[5m]))", "ops"),
            ("Handler latency p95",
             "histogram_quantile(0.95, sum by (le, service, topic) "
             "(rate(emberwatch_handler_seconds_bucket[5m])))", "s"),
            ("Consumer lag", "max by (service, topic) (emberwatch_consumer_lag)", "short"),
            ("DLQ messages (15m)", "sum by (service, topic, reason) "
             "(increase(emberwatch_dlq_messages_total[15m]))", "short"),
            ("Handler errors /s by kind",
             "sum by (service, kind) (rate(emberwatch_handler_errors_total[5m]))", "ops"),
            ("Services up", "emberwatch_service_up", "short"),
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


def panel(i: int, title: str, expr: str, unit: str) -> dict:
    return {
        "id": i + 1,
        "type": "timeseries",
        "title": title,
        "datasource": {"type": "prometheus", "uid": "prometheus"},
        "gridPos": {"h": 8, "w": 12, "x": 12 * (i % 2), "y": 8 * (i // 2)},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [{"refId": "A", "expr": expr, "datasource": {"type": "prometheus", "uid": "prometheus"}}],
    }


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
        "panels": [panel(i, *p) for i, p in enumerate(spec["panels"])],
    }


def main() -> None:
    HERE.mkdir(parents=True, exist_ok=True)
    for uid, spec in DASHBOARDS.items():
        (HERE / f"{uid}.json").write_text(json.dumps(dashboard(uid, spec), indent=2) + "\n")


if __name__ == "__main__":
    main()
