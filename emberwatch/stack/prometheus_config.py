"""The Prometheus configuration the local stack runs: Triton, plus every service by file discovery
(the services announce themselves through ``emberwatch/common/prometheus_targets.py``)."""

from __future__ import annotations

from pathlib import Path

import yaml

from emberwatch.common.config import Settings
from emberwatch.common.prometheus_targets import register_target, targets_dir

__all__ = ["register_target", "targets_dir", "write_prometheus_config"]


def write_prometheus_config(settings: Settings, *, scrape_interval: str = "5s") -> Path:
    root = settings.state_dir / "prometheus"
    root.mkdir(parents=True, exist_ok=True)
    targets_dir(settings).mkdir(parents=True, exist_ok=True)
    rules = Path(__file__).resolve().parents[2] / "monitoring" / "rules"
    config = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "rule_files": [str(rules / "*.yml")],
        "scrape_configs": [
            {
                "job_name": "triton",
                "static_configs": [
                    {"targets": [f"{settings.stack_host}:{settings.triton_metrics_port}"]}
                ],
            },
            {
                "job_name": "emberwatch",
                "file_sd_configs": [
                    {"files": [str(targets_dir(settings) / "*.json")], "refresh_interval": "5s"}
                ],
            },
        ],
    }
    path = root / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
