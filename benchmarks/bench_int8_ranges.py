"""Which INT8 quantisation keeps FP32's decisions: NNCF variants side by side in one run.

The backbone (random, seed 0) exported as ONNX; simulated fire/fire-free pairs split by fire (a
quarter held out as the test split); the trainer's head (``search_head``) trained on the training
tiles' embeddings; each variant quantised on the training tiles and compared with FP32 on the test
split: decisions that change, |dP(wildfire)|, and single-image in-process speed against FP32.
``emberwatch.ml.quantize_backbone`` uses the variant this picked (activation ranges from histograms).

Usage: ``.venv/bin/python benchmarks/bench_int8_ranges.py [PAIRS] [IMAGE_SIZE]`` (default 240 pairs,
224 px; about 6 minutes; run under the heavy lock). Results: benchmarks/serving.md.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_int8 import embed_compiled  # noqa: E402
from benchmarks.bench_numerics import scenes  # noqa: E402


def single_image_rate(compiled, x: np.ndarray, n: int = 40) -> float:
    request = compiled.create_infer_request()
    request.infer({0: x})
    began = time.perf_counter()
    for _ in range(n):
        request.infer({0: x})
    return n / (time.perf_counter() - began)


def main() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    pairs = int(sys.argv[1]) if len(sys.argv) > 1 else 240
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 224

    import nncf
    import openvino as ov
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    from emberwatch.ml.backbone import OPENVINO_CPU_CONFIG, compile_backbone_openvino, embed, \
        export_backbone_onnx, load_backbone
    from emberwatch.ml.head import head_predict_numpy
    from emberwatch.ml.settings import MLSettings
    from services.trainer.search_head import search_head

    root = Path(tempfile.mkdtemp(prefix="bench-int8-ranges-"))
    backbone = load_backbone(MLSettings(state_dir=root / "state", image_size=size))
    images, labels = scenes(2 * pairs, size)
    fire = np.arange(len(images)) // 2
    train, test = fire % 4 != 0, fire % 4 == 0
    fp32 = export_backbone_onnx(backbone, root / "fp32")
    c32 = compile_backbone_openvino(fp32 / "backbone.onnx")
    tf_train = embed(backbone, images[train])
    fit = search_head(tf_train, labels[train], tf_train[::4], labels[train][::4], units_grid=[128],
                      learning_rates=[1e-3], dropout=0.3, epochs=60, patience=8, batch_size=32, seed=0)
    p32 = head_predict_numpy(fit.arrays, embed_compiled(c32, images[test]))[:, 1]
    x1 = images[test][:1].astype(np.float32)
    base_rate = single_image_rate(c32, x1)

    model = ov.Core().read_model(str(fp32 / "backbone.onnx"))
    calibration = images[train]
    dataset = nncf.Dataset([calibration[i:i + 1].astype(np.float32) for i in range(len(calibration))])
    perf = nncf.QuantizationPreset.PERFORMANCE
    ranges = RangeEstimatorParametersSet
    variants = {
        "min-max activation ranges (NNCF's default)": dict(preset=perf),
        "min-max, target device CPU": dict(preset=perf, target_device=nncf.TargetDevice.CPU),
        "min-max, mixed preset": dict(preset=nncf.QuantizationPreset.MIXED),
        "activation ranges from histograms": dict(preset=perf, advanced_parameters=AdvancedQuantizationParameters(
            activations_range_estimator_params=ranges.HISTOGRAM)),
        "activation ranges from mean quantiles": dict(preset=perf, advanced_parameters=AdvancedQuantizationParameters(
            activations_range_estimator_params=ranges.MEAN_QUANTILE)),
    }
    rows = []
    for name, kwargs in variants.items():
        began = time.perf_counter()
        quantized = nncf.quantize(model, dataset, subset_size=len(calibration), **kwargs)
        seconds = time.perf_counter() - began
        compiled = ov.Core().compile_model(quantized, "CPU", OPENVINO_CPU_CONFIG)
        p8 = head_predict_numpy(fit.arrays, embed_compiled(compiled, images[test]))[:, 1]
        changed = int(((p32 >= 0.5) != (p8 >= 0.5)).sum())
        d = np.abs(p8 - p32)
        rows.append((name, changed, 100 * (1 - changed / test.sum()), np.median(d), np.quantile(d, 0.9), d.max(),
                     single_image_rate(compiled, x1) / base_rate, seconds))
        print(f"{name}: {changed} decisions changed", flush=True)

    print(f"\n{size} px, {int(test.sum())} test tiles, {int(train.sum())} calibration (training) tiles\n")
    print("| variant | decisions changed | agreement | abs dP med / p90 / max | speed vs FP32 (1 image) | quantisation s |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, changed, agree, med, p90, mx, speed, seconds in rows:
        print(f"| {name} | {changed} | {agree:.1f} % | {med:.3f} / {p90:.3f} / {mx:.3f} | {speed:.2f}× | {seconds:.0f} |")


if __name__ == "__main__":
    main()
