"""scripts/gpu-check: where no GPU is visible it says so and exits 0; its measuring parts (timing,
agreement, mixed-precision head training) run here on the CPU provider, the same code a GPU run uses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emberwatch.operations import check_gpu
from simulators.mapbox.sample_tiles import sample_tiles

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(600)


def test_without_a_gpu_the_script_says_so_and_exits_0():
    if check_gpu.visible_gpus().any:
        pytest.skip("a GPU is visible: the script measures it instead")
    out = subprocess.run(["bash", "scripts/gpu-check"], cwd=REPO, capture_output=True, text=True, timeout=300,
                         env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert "gpu-check: no NVIDIA GPU visible" in out.stdout and "ONNX Runtime GPU providers: none" in out.stdout


def test_the_measuring_parts_run_on_any_provider(tmp_path):
    import onnxruntime as ort

    from emberwatch.ml.backbone import embed, export_backbone_onnx, load_backbone
    from emberwatch.ml.settings import MLSettings

    size = 32
    backbone = load_backbone(MLSettings(state_dir=tmp_path, image_size=size))
    images, labels = sample_tiles(24, size)
    assert images.shape == (24, size, size, 3) and labels.sum() == 12
    onnx_path = export_backbone_onnx(backbone, tmp_path / "onnx") / "backbone.onnx"
    provider = check_gpu.provider_options("CPUExecutionProvider", tmp_path)
    session = ort.InferenceSession(str(onnx_path), providers=[provider])
    assert check_gpu.images_per_second(session, images, 8, seconds=0.5) > 0
    tf_emb = embed(backbone, images)
    predict, seconds, accuracy = check_gpu.train_head(tf_emb, labels, mixed=True, epochs=2)
    assert seconds > 0 and 0 <= accuracy <= 1
    same = check_gpu.agreement(tf_emb, check_gpu.embed_with(session, images), predict)
    assert same["emb_rel"] < 1e-5 and same["dp_max"] < 1e-3 and same["decisions_differ"] == 0
    # a wrong path is caught: embeddings shifted by a tenth of their range
    shifted = tf_emb + 0.1 * (tf_emb.max() - tf_emb.min()) * np.sign(np.random.default_rng(0).normal(size=tf_emb.shape))
    wrong = check_gpu.agreement(tf_emb, shifted.astype(np.float32), predict)
    assert wrong["emb_rel"] >= 0.09 and wrong["dp_max"] > same["dp_max"]
    assert check_gpu.provider_options("TensorrtExecutionProvider", tmp_path)[1]["trt_fp16_enable"] == "True"
