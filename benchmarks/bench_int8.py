"""INT8 against FP32 on the CPU, side by side in one run: throughput through Triton and
decision agreement on a held-out test split.

1. The backbone (random, seed 0) exported once as ONNX (FP32), and quantised to INT8 with NNCF on
   the TRAINING tiles (``emberwatch.ml.quantize_backbone``; the gatekeeper's ``openvino-cpu-int8``).
2. Simulated tiles (``simulators/mapbox``, fire and fire-free pairs): fires split into training and
   test by fire, so no test tile's fire was seen in training or calibration. The trainer's head
   (``search_head``) is trained on FP32 embeddings of the training tiles.
3. Agreement: the head's decisions on the test tiles through the FP32 backbone and the INT8 one.
4. Throughput: two Triton model repositories (FP32 ONNX, INT8 IR; the same two heads), served one
   after the other by the local ``tritonserver`` (python backend, OpenVINO), JPEG bytes in over gRPC
   at concurrency 1 and 8 (``bench_serving.measure``), and the same two backbones in-process.

Usage: ``.venv/bin/python benchmarks/bench_int8.py [SECONDS_PER_CELL] [IMAGE_SIZE] [PAIRS]``
(default 10 s, 224 px, 160 pairs). Results: benchmarks/serving.md ("INT8 on the CPU").
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_numerics import scenes  # noqa: E402
from benchmarks.bench_serving import jpegs, measure, triton_worker_factory  # noqa: E402


def cpu_flags() -> str:
    flags = set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    return ", ".join(f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_int8") if f in flags)


def embed_compiled(compiled, images: np.ndarray) -> np.ndarray:
    out = compiled.outputs[0]
    return np.concatenate([np.asarray(compiled(images[i:i + 16].astype(np.float32))[out])
                           for i in range(0, len(images), 16)])


def repository(root: Path, exported: Path, heads: list[Path], emb_dim: int) -> Path:
    from services.gatekeeper.serving import repository as triton_repo

    repo = root
    triton_repo.install_templates(repo)
    triton_repo.install_backbone(repo, exported)
    for version, head in enumerate(heads, start=1):
        triton_repo.place_head(repo, version, head)
    triton_repo.write_head_config(repo, list(range(1, len(heads) + 1)), emb_dim)
    triton_repo.write_serving(repo, champion=1, challenger=2)
    return repo


def main() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 224
    pairs = int(sys.argv[3]) if len(sys.argv) > 3 else 160

    from emberwatch.common.triton_client import Triton
    from emberwatch.ml.backbone import compile_backbone_openvino, embed, export_backbone_onnx, load_backbone
    from emberwatch.ml.head import build_head, export_head_npz, head_predict_numpy
    from emberwatch.ml.images import decode_image
    from emberwatch.ml.quantize_backbone import quantize_backbone_int8
    from emberwatch.ml.settings import MLSettings
    from emberwatch.stack import manage
    from services.trainer.search_head import search_head
    from tests.conftest import stack_settings

    root = Path(tempfile.mkdtemp(prefix="bench-int8-"))
    rows: list[tuple[str, str]] = []
    settings = None
    try:
        backbone = load_backbone(MLSettings(state_dir=root / "state", image_size=size))
        images, labels = scenes(2 * pairs, size)          # pairs (fire, fire-free) in fire order
        fire = np.arange(len(images)) // 2
        train, test = fire % 4 != 0, fire % 4 == 0         # a quarter of the fires held out
        fp32 = export_backbone_onnx(backbone, root / "fp32")
        t0 = time.perf_counter()
        int8 = quantize_backbone_int8(fp32, images[train], root / "int8")
        quantise_s = time.perf_counter() - t0
        c32 = compile_backbone_openvino(fp32 / "backbone.onnx")
        c8 = compile_backbone_openvino(int8 / "backbone.xml")
        tf_train = embed(backbone, images[train])
        fit = search_head(tf_train, labels[train], tf_train[::4], labels[train][::4], units_grid=[128],
                          learning_rates=[1e-3], dropout=0.3, epochs=60, patience=8, batch_size=32, seed=0)
        e32, e8 = embed_compiled(c32, images[test]), embed_compiled(c8, images[test])
        p32 = head_predict_numpy(fit.arrays, e32)[:, 1]
        p8 = head_predict_numpy(fit.arrays, e8)[:, 1]
        agree = float(((p32 >= 0.5) == (p8 >= 0.5)).mean())
        acc32 = float(((p32 >= 0.5) == labels[test]).mean())
        acc8 = float(((p8 >= 0.5) == labels[test]).mean())
        rows += [("CPU", cpu_flags()), ("image size / test tiles / calibration (training) tiles",
                                        f"{size} px / {int(test.sum())} / {int(train.sum())}"),
                 ("INT8 quantisation (NNCF)", f"{quantise_s:.1f} s"),
                 ("decision agreement INT8 vs FP32 on the test split", f"{100 * agree:.1f} %"),
                 ("test accuracy FP32 / INT8", f"{acc32:.3f} / {acc8:.3f}"),
                 ("abs dP(wildfire) max INT8 vs FP32", f"{np.abs(p8 - p32).max():.3f}")]

        heads = []
        for version, seed in ((1, 0), (2, 1)):
            head = build_head(tf_train.shape[1], 64, 0.1, tf_train, seed=seed)
            export_head_npz(head, root / f"head{version}", backbone_id=backbone.backbone_id, image_size=size)
            heads.append(root / f"head{version}")
        tiles = jpegs(32, size)
        results: dict[tuple[str, int], dict] = {}
        for name, exported in (("FP32", fp32), ("INT8", int8)):
            compiled = c32 if name == "FP32" else c8
            decoded = np.stack([decode_image(b, size) for b in tiles]).astype(np.float32)
            for c in (1, 8):
                def factory(compiled=compiled):
                    request = compiled.create_infer_request()
                    return lambda i: request.infer({0: decoded[i % len(decoded)][None]})
                results[(f"in-process {name}", c)] = measure(factory, c, seconds)
            repo = repository(root / f"repo-{name}", exported, heads, tf_train.shape[1])
            settings = stack_settings(root / f"stack-{name}", "triton", triton_model_repository=repo)
            manage.up(settings)
            triton = Triton(settings.triton_url)
            for model in ("backbone", "head", "wildfire"):
                triton.load(model)
            for c in (1, 8):
                results[(f"Triton gRPC {name}", c)] = measure(
                    triton_worker_factory("grpc", settings.triton_grpc_url, tiles, None), c, seconds)
            manage.down(settings)
            settings = None
    finally:
        if settings is not None:
            manage.down(settings)
        shutil.rmtree(root, ignore_errors=True)

    for key, value in rows:
        print(f"{key}: {value}")
    print()
    print("| path | concurrency | req/s | p50 ms | p99 ms | INT8 / FP32 |")
    print("|---|---:|---:|---:|---:|---:|")
    for (name, c), r in results.items():
        ratio = ""
        if "INT8" in name:
            base = results[(name.replace("INT8", "FP32"), c)]["rps"]
            ratio = f"**{r['rps'] / base:.2f}x**"
        print(f"| {name} | {c} | {r['rps']:.1f} | {r['p50_ms']:.0f} | {r['p99_ms']:.0f} | {ratio} |")
    print(json.dumps({"rows": rows, "results": [{"path": n, "concurrency": c, **r} for (n, c), r in results.items()]}))


if __name__ == "__main__":
    main()
