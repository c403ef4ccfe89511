"""How far each way of serving the backbone moves the served probabilities from the trainer's.

The trainer embeds with TensorFlow and trains the head on those embeddings; Triton serves the one
exported ``backbone.onnx``: locally through OpenVINO on the CPU (FP32), deployed through ONNX Runtime's
TensorRT provider on a GPU (FP16). For simulated tiles (fire and fire-free places from
``simulators/mapbox``, as ``bench_numerics.py`` draws them) this prints, side by side in one run:

- the export (Keras → ONNX through tf2onnx): seconds;
- per path — ONNX Runtime FP32, OpenVINO on the ONNX (FP32), and the ONNX cast to FP16 and run by
  ONNX Runtime on the CPU (the closest this machine gets to TensorRT FP16) — the embedding difference
  relative to the embeddings' range, and |p_served - p_keras| (median / p99 / max) and decisions that
  differ, with the trainer's own head (``search_head``) trained on the TF embeddings.

These numbers are what infra validation's tolerance per precision stands on
(``services/gatekeeper/validate_candidate.PRECISION_FACTOR``).

Usage: ``.venv/bin/python benchmarks/bench_precision.py [N] [SIZES]`` (default 160 images, size 128).
Results: benchmarks/serving.md ("Precision and infra validation").
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_numerics import current_head_numpy, quantiles, scenes  # noqa: E402


def run_all(session_or_compiled, images: np.ndarray, kind: str) -> np.ndarray:
    out = []
    for i in range(0, len(images), 16):
        x = images[i:i + 16].astype(np.float32)
        if kind == "ort":
            out.append(session_or_compiled.run(["EMBEDDINGS"], {"IMAGES": x})[0])
        else:
            out.append(np.asarray(session_or_compiled(x)[session_or_compiled.outputs[0]]))
    return np.concatenate(out)


def main(n: int, sizes: list[int]) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import onnx
    import onnxruntime as ort
    from onnxruntime.transformers.float16 import convert_float_to_float16

    from emberwatch.ml.backbone import compile_backbone_openvino, embed, export_backbone_onnx, load_backbone
    from emberwatch.ml.settings import MLSettings

    rows = []
    for size in sizes:
        with tempfile.TemporaryDirectory() as state:
            backbone = load_backbone(MLSettings(state_dir=Path(state), image_size=size))
            t0 = time.perf_counter()
            out = export_backbone_onnx(backbone, Path(state) / "onnx")
            export_s = time.perf_counter() - t0
            path = out / "backbone.onnx"
            fp16 = Path(state) / "backbone.fp16.onnx"
            onnx.save(convert_float_to_float16(onnx.load(str(path)), keep_io_types=True), str(fp16))
            images, labels = scenes(n, size)
            tf_emb = embed(backbone, images)
            cpu = ["CPUExecutionProvider"]
            served = {
                "onnxruntime FP32": run_all(ort.InferenceSession(str(path), providers=cpu), images, "ort"),
                "openvino on the ONNX, FP32": run_all(compile_backbone_openvino(path), images, "ov"),
                "onnxruntime FP16 (ONNX cast, CPU)": run_all(ort.InferenceSession(str(fp16), providers=cpu),
                                                             images, "ort"),
            }
        train = np.arange(len(images)) % 4 != 0
        head = current_head_numpy(tf_emb[train], labels[train], tf_emb[~train], labels[~train])
        p_tf = head(tf_emb)[:, 1]
        spread = float(tf_emb.max() - tf_emb.min())
        for name, emb in served.items():
            p = head(emb)[:, 1]
            rows.append({"size": size, "path": name, "export s": f"{export_s:.1f}",
                         "emb max abs diff / range": f"{np.abs(emb - tf_emb).max() / spread:.1e}",
                         "abs dP med / p99 / max": quantiles(np.abs(p - p_tf)),
                         "decisions differ": f"{int(((p >= 0.5) != (p_tf >= 0.5)).sum())} of {len(p)}"})
        print(f"size {size} done", file=sys.stderr)
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(str(r[k]) for k in keys) + " |")


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 160
    sizes = [int(s) for s in (sys.argv[2] if len(sys.argv) > 2 else "128").split(",")]
    main(count, sizes)
