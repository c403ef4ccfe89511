"""File-based service discovery for a Prometheus on the same host: a process that serves /metrics
announces its address as ``<state_dir>/prometheus/targets/<job>.json``, which the local stack's
Prometheus reads (``emberwatch/stack/prometheus_config.py`` points it at this folder). Deployed, the
file is written and nobody reads it; Kubernetes and compose find the services their own way."""

from __future__ import annotations

import json
from pathlib import Path

from emberwatch.common.config import Settings


def targets_dir(settings: Settings) -> Path:
    return settings.state_dir / "prometheus" / "targets"


def register_target(settings: Settings, job: str, address: str) -> Path:
    """Announce a /metrics address to the local Prometheus (file-based service discovery)."""
    folder = targets_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{job}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps([{"targets": [address], "labels": {"service": job}}]))
    tmp.replace(path)
    return path
