"""Grafana dashboards: generated from build_dashboards.py, and every panel queries an exported metric."""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = REPO / "monitoring/grafana/dashboards"
PROMQL_WORDS = {"sum", "by", "rate", "increase", "histogram_quantile", "max", "min", "avg", "clamp_min",
                "le", "without", "on", "ignoring", "count", "topk", "irate", "delta", "abs", "or",
                "and", "unless", "bool", "offset", "time", "vector", "label_replace", "avg_over_time",
                "max_over_time", "sum_over_time", "deriv"}


def _panels():
    for path in sorted(DASHBOARDS.glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            yield path.name, panel


def _metric_names(expr: str) -> set[str]:
    expr = re.sub(r"\{[^}]*\}", "", expr)  # drop label matchers
    expr = re.sub(r"\([^()]*\bby\b", "(", expr)
    names = set(re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b", expr))
    by_labels = set(re.findall(r"\bby\s*\(([^)]*)\)", expr))
    labels = {lab.strip() for group in by_labels for lab in group.split(",")}
    return {n for n in names if n not in PROMQL_WORDS and n not in labels and not n[0].isdigit()
            and "_" in n and not re.fullmatch(r"\d+[smhd]", n)}


def _exported_names() -> set[str]:
    import emberwatch.common.telemetry  # noqa: F401 - registers the shared metrics

    try:
        import services
    except ImportError:
        services = None
    if services is not None:
        for mod in pkgutil.walk_packages(services.__path__, "services."):
            if mod.name.endswith((".metrics", ".telemetry")):
                importlib.import_module(mod.name)
    names = set()
    for metric in REGISTRY.collect():
        for sample in metric.samples:
            names.add(sample.name)
        names.add(metric.name)
        if metric.type == "counter":
            names.add(metric.name + "_total")
        if metric.type == "histogram":
            names.update({metric.name + s for s in ("_bucket", "_sum", "_count")})
    return names


def test_dashboards_are_up_to_date_with_their_generator(tmp_path, monkeypatch):
    import runpy

    module = runpy.run_path(str(REPO / "monitoring/grafana/build_dashboards.py"))
    for uid, spec in module["DASHBOARDS"].items():
        built = module["dashboard"](uid, spec)
        assert json.loads((DASHBOARDS / f"{uid}.json").read_text()) == built, f"regenerate {uid}.json"


def test_every_panel_queries_a_metric_the_code_exports():
    exported = _exported_names()
    checked = 0
    for name, panel in _panels():
        for target in panel["targets"]:
            for metric in _metric_names(target["expr"]):
                if metric.startswith("nv_"):
                    continue  # Triton's own metrics: checked against a live Triton in the stack test
                assert metric in exported, f"{name}: panel {panel['title']!r} queries unknown {metric}"
                checked += 1
    assert checked >= 5


def test_provisioning_points_at_the_dashboards_folder():
    import yaml

    prov = yaml.safe_load((REPO / "monitoring/grafana/provisioning/dashboards/emberwatch.yml").read_text())
    assert prov["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert "./monitoring/grafana/dashboards:/var/lib/grafana/dashboards:ro" in mounts


def test_template_variable_queries_use_exported_metrics():
    exported = _exported_names()
    checked = 0
    for path in sorted(DASHBOARDS.glob("*.json")):
        for var in json.loads(path.read_text()).get("templating", {}).get("list", []):
            if var["type"] != "query":
                continue
            inner = re.fullmatch(r"label_values\((.*),\s*\w+\)", var["query"]["query"]).group(1)
            for metric in _metric_names(inner):
                assert metric in exported, f"{path.name}: variable {var['name']} queries unknown {metric}"
                checked += 1
    assert checked >= 1


def test_the_notifier_links_to_the_model_dashboard_with_its_model_variable():
    from services.notifier.settings import NotifierSettings

    uid = NotifierSettings.model_fields["notifier_grafana_dashboard_uid"].default
    [board] = [json.loads(p.read_text()) for p in DASHBOARDS.glob("*.json")
               if json.loads(p.read_text())["uid"] == uid]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["model"]["type"] == "custom"
    assert variables["model"]["current"]["value"] == "emberwatch-resnet50"
    assert variables["version"]["type"] == "query"
    queries = [t["expr"] for p in board["panels"] for t in p["targets"]]
    assert any("emberwatch_model_psi" in q for q in queries)
    assert all('model="$model"' in q for q in queries if "emberwatch_model_" in q)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_every_panel_query_is_valid_promql(tmp_path):
    """Each query (template variables filled in) checked by promtool as a recording rule."""
    import yaml

    rules = []
    for name, panel in _panels():
        for target in panel["targets"]:
            expr = target["expr"].replace("$model", "emberwatch-resnet50").replace("$version", ".*")
            rules.append({"record": f"panel:{Path(name).stem}:{panel['id']}{target['refId']}", "expr": expr})
    path = tmp_path / "panels.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    result = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
