"""INT8 post-training quantisation of the exported backbone (the openvino-cpu-int8 option): the IR it
writes runs in OpenVINO, stays close to FP32 on these tiles, says its precision; bad calibration is refused."""

from __future__ import annotations

import json

import numpy as np
import pytest

from emberwatch.ml import backbone as bb
from emberwatch.ml.quantize_backbone import MIN_CALIBRATION, quantize_backbone_int8

from .conftest import SIZE


def _tiles(n: int, seed: int) -> np.ndarray:
    """Smooth scenes with structure (not noise): what activation ranges are calibrated on."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    out = []
    for _ in range(n):
        base = rng.uniform(30, 200, 3)
        wave = np.sin(2 * np.pi * (xx * rng.uniform(1, 4) + yy * rng.uniform(1, 4)))[..., None]
        out.append(np.clip(base + 40 * wave + rng.normal(0, 5, (SIZE, SIZE, 3)), 0, 255))
    return np.asarray(out, np.uint8)


def test_int8_backbone_is_written_runs_and_stays_close_to_fp32(backbone, tmp_path):
    exported = bb.export_backbone_onnx(backbone, tmp_path / "fp32")
    out = quantize_backbone_int8(exported, _tiles(MIN_CALIBRATION, seed=1), tmp_path / "int8")
    meta = json.loads((out / "backbone.json").read_text())
    assert (meta["precision"], meta["format"], meta["file"]) == ("int8", "openvino", "backbone.xml")
    assert meta["calibration"]["tiles"] == MIN_CALIBRATION and meta["backbone_id"] == backbone.backbone_id
    assert "FakeQuantize" in (out / "backbone.xml").read_text()  # really quantised, not a copy
    x = _tiles(6, seed=2).astype(np.float32)
    fp32 = bb.compile_backbone_openvino(exported / "backbone.onnx")
    int8 = bb.compile_backbone_openvino(out / "backbone.xml")
    a, b = fp32(x)[fp32.outputs[0]], int8(x)[int8.outputs[0]]
    assert b.shape == a.shape and np.isfinite(b).all()
    cosine = (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert cosine.min() > 0.98, cosine


def test_calibration_that_does_not_fit_is_refused(backbone, tmp_path):
    exported = bb.export_backbone_onnx(backbone, tmp_path / "fp32")
    with pytest.raises(ValueError, match="at least"):
        quantize_backbone_int8(exported, _tiles(MIN_CALIBRATION - 1, seed=1), tmp_path / "a")
    with pytest.raises(ValueError, match="shape"):
        quantize_backbone_int8(exported, np.zeros((20, SIZE + 1, SIZE, 3), np.uint8), tmp_path / "b")
