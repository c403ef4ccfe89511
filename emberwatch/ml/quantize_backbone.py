"""INT8 for the CPU: post-training quantisation of the exported backbone with NNCF, calibrated on
training tiles. An option of the local stack (``EMBERWATCH_TRITON_BACKBONE_RUNTIME=openvino-cpu-int8``):
the python backend compiles the quantised OpenVINO IR it writes, as it compiles the FP32 ONNX.
Measured against FP32 in ``benchmarks/bench_int8.py`` (results: benchmarks/serving.md).

Activation ranges come from histograms of the calibration activations (NNCF's ``HISTOGRAM`` range
estimator), not from their minimum and maximum: a few extreme activations stretched the min-max
ranges so far that the quantisation steps of the other values grew coarse, and 4 of 120 test tiles
changed decision (|dP| up to 0.57). With the histogram ranges none of them did (|dP| at most 0.085),
at 2.7x FP32 instead of 3.0x in-process (``benchmarks/serving.md``)."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

MIN_CALIBRATION = 16  # fewer tiles than this calibrate the activation ranges too coarsely


def calibration_digest(images: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(images, dtype=np.uint8).tobytes()).hexdigest()[:16]


def quantize_backbone_int8(exported: Path, calibration: np.ndarray, out_dir: Path) -> Path:
    """Quantise ``exported/backbone.onnx`` (FP32) to INT8 with NNCF, its activation ranges measured on
    ``calibration`` (uint8 training tiles, (N, S, S, 3)); write ``backbone.xml``/``.bin`` and a
    ``backbone.json`` that says ``precision: int8`` into ``out_dir``; return it. Raises ValueError for
    a calibration set that does not fit the backbone."""
    import nncf
    import openvino as ov
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    meta = json.loads((Path(exported) / "backbone.json").read_text())
    size = int(meta["image_size"])
    images = np.asarray(calibration)
    if images.ndim != 4 or images.shape[1:] != (size, size, 3):
        raise ValueError(f"calibration tiles have shape {images.shape}, the backbone takes (N, {size}, {size}, 3)")
    if len(images) < MIN_CALIBRATION:
        raise ValueError(f"{len(images)} calibration tiles: at least {MIN_CALIBRATION} are needed")
    model = ov.Core().read_model(str(Path(exported) / meta.get("file", "backbone.onnx")))
    dataset = nncf.Dataset([images[i:i + 1].astype(np.float32) for i in range(len(images))])
    quantized = nncf.quantize(model, dataset, subset_size=len(images), preset=nncf.QuantizationPreset.PERFORMANCE,
                              advanced_parameters=AdvancedQuantizationParameters(
                                  activations_range_estimator_params=RangeEstimatorParametersSet.HISTOGRAM))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ov.save_model(quantized, str(out / "backbone.xml"), compress_to_fp16=False)
    meta.update(format="openvino", file="backbone.xml", precision="int8",
                calibration={"tiles": int(len(images)), "digest": calibration_digest(images),
                             "method": "NNCF post-training quantisation (performance preset, "
                                       "activation ranges from histograms)"})
    (out / "backbone.json").write_text(json.dumps(meta, indent=2))
    log.info("backbone quantised to INT8", extra={"backbone_id": meta.get("backbone_id"), "tiles": len(images)})
    return out
