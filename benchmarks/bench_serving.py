"""Serving throughput and latency at 224 px, side by side in one run.

* Triton (the ``wildfire`` BLS model: JPEG bytes in; the exported ``backbone.onnx`` compiled by
  OpenVINO, as the local stack serves it + numpy head) over HTTP and gRPC at concurrency 1 and 8;
* the same runtime in-process (decode_image + the same ONNX file under the same OpenVINO settings +
  head_predict_numpy + the evidence shrink: the wildfire model's output), 1 and 8 threads: Triton's
  target is >= 90% of it;
* Keras ``predict`` behind a plain HTTP service (Starlette/uvicorn; the reference project served
  Keras with BentoML), concurrency 1 and 8;
* champion + challenger in one request (shadow scoring) vs champion alone: target <= 1.05x.

Every path is measured once per round and the rounds follow one another, so the machine's slow
minutes fall on all paths alike; each ratio is taken within a round and the median shown.

Usage: python benchmarks/bench_serving.py [SECONDS_PER_CELL] [IMAGE_SIZE] [ROUNDS]   (run under the heavy lock)
"""

from __future__ import annotations

import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from emberwatch.common.telemetry import free_port  # noqa: E402
from emberwatch.common.triton_client import Triton  # noqa: E402
from emberwatch.stack import manage  # noqa: E402
from services.gatekeeper.serving import repository as triton_repo  # noqa: E402
from tests.conftest import stack_settings  # noqa: E402


def jpegs(n: int, size: int) -> list[bytes]:
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        base = rng.integers(40, 160, 3)
        img = np.clip(base + rng.normal(0, 25, (size, size, 3)), 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def measure(make_worker: Callable[[], Callable[[int], None]], concurrency: int, seconds: float,
            warmup_s: float = 2.0) -> dict:
    """Run ``concurrency`` threads, each calling its own worker(i) in a loop; latency per call."""
    stop = threading.Event()
    record = threading.Event()
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def loop() -> None:
        work = make_worker()
        i = 0
        while not stop.is_set():
            start = time.perf_counter()
            try:
                work(i)
            except Exception as exc:  # noqa: BLE001
                errors.append(repr(exc))
                continue
            if record.is_set():
                with lock:
                    latencies.append(time.perf_counter() - start)
            i += 1

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    time.sleep(warmup_s)
    record.set()
    began = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    elapsed = time.perf_counter() - began
    for t in threads:
        t.join(timeout=60)
    lat = sorted(latencies)
    return {
        "rps": len(lat) / elapsed,
        "p50_ms": 1000 * statistics.median(lat) if lat else float("nan"),
        "p99_ms": 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))] if lat else float("nan"),
        "n": len(lat), "errors": len(errors),
    }


def prepare(root: Path, size: int) -> dict:
    """Backbone (the deployed artifact: backbone.onnx) + two heads in a Triton repository; the Keras
    head saved for the baseline."""
    from emberwatch.ml.backbone import embed, export_backbone_onnx, load_backbone
    from emberwatch.ml.head import build_head, export_head_npz
    from emberwatch.ml.images import decode_image
    from emberwatch.ml.settings import MLSettings

    state = root / "state"
    bb = load_backbone(MLSettings(state_dir=state, image_size=size))
    repo = root / "repo"
    triton_repo.install_templates(repo)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        export_backbone_onnx(bb, Path(tmp))
        triton_repo.install_backbone(repo, Path(tmp))
    export_s = time.perf_counter() - t0
    images = np.stack([decode_image(b, size) for b in jpegs(16, size)])
    emb = embed(bb, images)
    for version, seed in ((1, 0), (2, 1)):
        head = build_head(emb.shape[1], 64, 0.1, emb, seed=seed)
        export_head_npz(head, root / f"head{version}", backbone_id=bb.backbone_id, image_size=size)
        triton_repo.place_head(repo, version, root / f"head{version}")
        if version == 1:
            head.save(root / "head1.keras")
    triton_repo.write_head_config(repo, [1, 2], emb.shape[1])
    triton_repo.write_serving(repo, champion=1, challenger=2)
    return {"state": state, "repo": repo, "export_s": export_s}


def in_process_worker_factory(repo: Path, size: int, images: list[bytes]):
    from emberwatch.ml.backbone import compile_backbone_openvino
    from emberwatch.ml.evidence import shrink_to_evidence
    from emberwatch.ml.head import head_predict_numpy
    from emberwatch.ml.images import decode_image

    # the same file and the same OpenVINO settings as Triton's backbone model (triton_models/backbone)
    compiled = compile_backbone_openvino(repo / "backbone" / "1" / "backbone.onnx", PERFORMANCE_HINT="LATENCY")
    with np.load(repo / "head" / "1" / "head.npz") as data:
        arrays = {k: data[k] for k in data.files}

    def factory():
        request = compiled.create_infer_request()

        def work(i: int) -> None:
            x = decode_image(images[i % len(images)], size)[None].astype(np.float32)
            request.infer({0: x})
            # the same output as the wildfire model: the head's probabilities, shrunk by the evidence
            shrink_to_evidence(head_predict_numpy(arrays, request.get_output_tensor(0).data), x)

        return work

    return factory


def triton_worker_factory(kind: str, url: str, images: list[bytes], versions: str | None):
    def factory():
        if kind == "grpc":
            import tritonclient.grpc as client
        else:
            import tritonclient.http as client
        c = client.InferenceServerClient(url)
        params = {"versions": versions} if versions else None

        def work(i: int) -> None:
            data = np.array([[images[i % len(images)]]], dtype=np.object_)
            inp = client.InferInput("IMAGE_BYTES", [1, 1], "BYTES")
            inp.set_data_from_numpy(data)
            result = c.infer("wildfire", [inp], parameters=params)
            assert result.as_numpy("PROBABILITIES").shape == (1, 2)

        return work

    return factory


def keras_worker_factory(url: str, images: list[bytes]):
    def factory():
        c = httpx.Client(timeout=60)

        def work(i: int) -> None:
            r = c.post(url, content=images[i % len(images)])
            r.raise_for_status()

        return work

    return factory


def run_rounds(cells: list[tuple[str, int, Callable]], rounds: int, seconds: float,
               console: Console) -> dict[tuple[str, int], list[dict]]:
    """Every cell once per round, the rounds one after another: a slow minute of the machine hits
    every path alike instead of whichever was measured then."""
    out: dict[tuple[str, int], list[dict]] = {(name, c): [] for name, c, _ in cells}
    for r in range(rounds):
        for name, c, factory in cells:
            out[(name, c)].append(measure(factory, c, seconds))
        console.print(f"round {r + 1}/{rounds} done")
    return out


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 224
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    console = Console(width=150)
    root = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    images = jpegs(32, size)
    results: dict[tuple[str, int], list[dict]] = {}
    settings = None
    keras_proc = None
    try:
        info = prepare(root, size)
        console.print(f"backbone exported to ONNX in {info['export_s']:.1f}s; {rounds} rounds of "
                      f"{seconds:.0f}s per cell")
        settings = stack_settings(root / "stack", "triton", triton_model_repository=info["repo"])
        manage.up(settings)
        t = Triton(settings.triton_url)
        for model in ("backbone", "head", "wildfire"):
            t.load(model)
        in_process = in_process_worker_factory(info["repo"], size, images)
        cells: list[tuple[str, int, Callable]] = []
        for c in (1, 8):
            cells += [(IN_PROCESS, c, in_process),
                      ("Triton HTTP champion", c, triton_worker_factory("http", settings.triton_url, images, None)),
                      (GRPC_ALONE, c, triton_worker_factory("grpc", settings.triton_grpc_url, images, None)),
                      (GRPC_SHADOW, c, triton_worker_factory("grpc", settings.triton_grpc_url, images,
                                                             "champion,challenger"))]
        results.update(run_rounds(cells, rounds, seconds, console))
        manage.down(settings)
        settings = None

        port = free_port()
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "")}
        keras_proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("keras_http_service.py")), str(info["state"]),
             str(root / "head1.keras"), str(size), str(port)], env={k: v for k, v in env.items() if v})
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        for c in (1, 8):  # once: a reference point, not a path we serve
            results[("Keras predict behind HTTP (Starlette)", c)] = [
                measure(keras_worker_factory(f"http://127.0.0.1:{port}/predict", images), c, seconds)]
    finally:
        if keras_proc is not None:
            keras_proc.terminate()
            keras_proc.wait(timeout=30)
        if settings is not None:
            manage.down(settings)
        shutil.rmtree(root, ignore_errors=True)
    report(results, size, seconds, rounds, console)


IN_PROCESS = "in-process OpenVINO (same runtime)"
GRPC_ALONE = "Triton GRPC champion"
GRPC_SHADOW = "Triton GRPC champion+challenger"


def report(results: dict[tuple[str, int], list[dict]], size: int, seconds: float, rounds: int,
           console: Console) -> None:
    """Medians over the rounds; each ratio is taken within a round, then its median shown."""
    def ratios(name: str, c: int, against: str, invert: bool = False) -> list[float]:
        pairs = zip(results[(name, c)], results[(against, c)])
        return [(b["rps"] / a["rps"]) if invert else (a["rps"] / b["rps"]) for a, b in pairs]

    table = Table(title=f"Serving at {size} px (JPEG in, class probabilities out), {seconds:.0f}s per cell, "
                        f"median of {rounds} rounds")
    for col in ("path", "concurrency", "req/s", "p50 ms", "p99 ms", "vs in-process", "per round", "errors"):
        table.add_column(col, justify="right" if col != "path" else "left")
    for (name, c), runs in results.items():
        med = {k: statistics.median(r[k] for r in runs) for k in ("rps", "p50_ms", "p99_ms")}
        per_round = ratios(name, c, IN_PROCESS) if len(runs) == rounds else [
            r["rps"] / statistics.median(x["rps"] for x in results[(IN_PROCESS, c)]) for r in runs]
        table.add_row(name, str(c), f"{med['rps']:.1f}", f"{med['p50_ms']:.0f}", f"{med['p99_ms']:.0f}",
                      f"{100 * statistics.median(per_round):.0f}%",
                      " ".join(f"{100 * x:.0f}" for x in per_round), str(sum(r["errors"] for r in runs)))
    console.print(table)
    for c in (1, 8):
        cost = ratios(GRPC_SHADOW, c, GRPC_ALONE, invert=True)
        console.print(f"shadow cost at concurrency {c}: champion+challenger / champion alone = "
                      f"{statistics.median(cost):.3f}x time per request (rounds: "
                      + ", ".join(f"{x:.3f}" for x in cost) + ")")
    print(json.dumps([{"path": n, "concurrency": c, "round": i, **r}
                      for (n, c), runs in results.items() for i, r in enumerate(runs)]))


if __name__ == "__main__":
    main()
