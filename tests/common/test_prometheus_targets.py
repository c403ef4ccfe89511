"""A service announces its /metrics address to the local Prometheus as a file-discovery target."""

from __future__ import annotations

import json

from emberwatch.common.config import Settings
from emberwatch.common.prometheus_targets import register_target, targets_dir


def test_a_target_file_names_the_address_and_the_service_and_is_replaced_whole(tmp_path):
    settings = Settings(state_dir=tmp_path)
    path = register_target(settings, "tiler", "127.0.0.1:9102")
    assert path.parent == targets_dir(settings) == tmp_path / "prometheus" / "targets"
    assert json.loads(path.read_text()) == [{"targets": ["127.0.0.1:9102"], "labels": {"service": "tiler"}}]
    register_target(settings, "tiler", "127.0.0.1:9999")
    assert json.loads(path.read_text())[0]["targets"] == ["127.0.0.1:9999"]
    assert sorted(p.name for p in path.parent.iterdir()) == ["tiler.json"]  # no temp file left
