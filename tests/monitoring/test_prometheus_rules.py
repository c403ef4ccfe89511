"""Prometheus config and alert rules: `promtool check` and `promtool test rules` pass."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")


def _promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=120, cwd=REPO)


def test_rules_are_valid():
    rules = sorted(str(p) for p in (REPO / "monitoring/rules").glob("*.yml"))
    assert rules
    result = _promtool("check", "rules", *rules)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass():
    tests = sorted(str(p) for p in (REPO / "monitoring/tests").glob("*.yml"))
    assert tests
    result = _promtool("test", "rules", *tests)
    assert result.returncode == 0, result.stdout + result.stderr


def test_local_stack_config_is_valid(tmp_path):
    from emberwatch.common.config import Settings
    from emberwatch.stack.prometheus_config import write_prometheus_config

    config = write_prometheus_config(Settings(state_dir=tmp_path))
    result = _promtool("check", "config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
