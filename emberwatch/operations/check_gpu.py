"""``scripts/gpu-check``: prove the GPU paths on a machine with an NVIDIA GPU; say so where there is none.

On a GPU it (1) trains a head with mixed precision (``mixed_float16``) beside float32 on embeddings of
simulated tiles, on the GPU TensorFlow sees, and (2) runs the exported ONNX backbone with ONNX
Runtime's TensorRT (FP16) and CUDA providers beside the CPU provider: img/s at batch 1 and 8 and the
agreement with the CPU path (embedding difference relative to their range, P(wildfire) difference and
decisions that differ under the head trained in (1)). It prints one table and exits 1 if a GPU path
disagrees beyond the FP16 infra-validation tolerance. Where no GPU is visible it prints one line and
exits 0, so it can run anywhere. Pure helpers (providers, timing, agreement) take any provider, so the
tests run them on the CPU. The tiles come from the caller (``emberwatch/cli/gpu_check_command.py`` gives
the Mapbox simulator's): deployed code never imports a simulator.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
# (n, size) -> n labelled tiles (uint8, (n, size, size, 3)) and their labels (1 = fire)
TileSampler = Callable[[int, int], tuple[np.ndarray, np.ndarray]]
FP16_TOLERANCE = 2e-2  # infra validation's FP16 tolerance (validate_candidate: 2e-3 x 10)


@dataclass
class GpuVisibility:
    nvidia_smi: list[str] = field(default_factory=list)   # `nvidia-smi -L` lines
    tensorflow: list[str] = field(default_factory=list)   # TF's physical GPUs
    onnxruntime: list[str] = field(default_factory=list)  # ONNX Runtime's GPU providers

    @property
    def any(self) -> bool:
        return bool(self.nvidia_smi or self.tensorflow or self.onnxruntime)

    def line(self) -> str:
        smi = f"{len(self.nvidia_smi)} GPU(s)" if self.nvidia_smi else (
            "not found" if shutil.which("nvidia-smi") is None else "no GPU")
        return (f"nvidia-smi: {smi}; TensorFlow: {len(self.tensorflow)} GPU(s); ONNX Runtime GPU providers: "
                f"{', '.join(self.onnxruntime) or 'none'}")


def visible_gpus() -> GpuVisibility:
    seen = GpuVisibility()
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
            seen.nvidia_smi = [line for line in out.stdout.splitlines() if line.startswith("GPU ")]
        except (OSError, subprocess.SubprocessError):
            pass
    try:
        import tensorflow as tf

        seen.tensorflow = [d.name for d in tf.config.list_physical_devices("GPU")]
    except ImportError:
        pass
    try:
        import onnxruntime as ort

        seen.onnxruntime = [p for p in ort.get_available_providers() if p in GPU_PROVIDERS]
    except ImportError:
        pass
    return seen


def provider_options(provider: str, cache_dir: Path) -> tuple[str, dict[str, str]]:
    """ONNX Runtime's options for ``provider``: TensorRT in FP16 with its engines cached, as Triton runs it."""
    if provider == "TensorrtExecutionProvider":
        return provider, {"trt_fp16_enable": "True", "trt_engine_cache_enable": "True",
                          "trt_engine_cache_path": str(cache_dir)}
    return provider, {}


def images_per_second(session, images: np.ndarray, batch: int, seconds: float = 5.0) -> float:
    """Throughput of ``session`` on ``images`` in batches of ``batch`` (after one warm-up run)."""
    x = images[:batch].astype(np.float32)
    session.run(["EMBEDDINGS"], {"IMAGES": x})
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        session.run(["EMBEDDINGS"], {"IMAGES": x})
        done += len(x)
    return done / (time.perf_counter() - start)


def embed_with(session, images: np.ndarray, batch: int = 16) -> np.ndarray:
    return np.concatenate([session.run(["EMBEDDINGS"], {"IMAGES": images[i:i + batch].astype(np.float32)})[0]
                           for i in range(0, len(images), batch)])


def agreement(reference: np.ndarray, other: np.ndarray, predict) -> dict[str, float]:
    """How far ``other`` embeddings are from ``reference`` ones, and what that does to P(wildfire)."""
    span = float(reference.max() - reference.min()) or 1.0
    p_ref, p = predict(reference)[:, 1], predict(other)[:, 1]
    return {"emb_rel": float(np.abs(other - reference).max() / span),
            "dp_max": float(np.abs(p - p_ref).max()),
            "decisions_differ": int(((p >= 0.5) != (p_ref >= 0.5)).sum())}


def train_head(embeddings: np.ndarray, labels: np.ndarray, *, mixed: bool, epochs: int = 30):
    """A head (``emberwatch.ml.head``) trained under ``mixed_float16`` or ``float32``: (predict, seconds, accuracy)."""
    import keras

    from emberwatch.ml.head import build_head, head_arrays, head_predict_numpy

    train = np.arange(len(labels)) % 4 != 0
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
    try:
        head = build_head(embeddings.shape[1], 128, 0.3, embeddings[train], seed=0)
        head.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
        start = time.perf_counter()
        head.fit(embeddings[train], labels[train], epochs=epochs, batch_size=32, verbose=0)
        seconds = time.perf_counter() - start
    finally:
        keras.mixed_precision.set_global_policy(previous)
    arrays = head_arrays(head)
    predict = lambda e: head_predict_numpy(arrays, e)  # noqa: E731
    accuracy = float(((predict(embeddings[~train])[:, 1] >= 0.5) == labels[~train]).mean())
    return predict, seconds, accuracy


def run_check(tiles: TileSampler, *, n: int = 96, size: int = 224, seconds: float = 5.0, report=print) -> int:
    """Measure on ``tiles(n, size)``; 0 when every GPU path agrees with the CPU (or no GPU is visible)."""
    seen = visible_gpus()
    if not seen.any:
        report(f"gpu-check: no NVIDIA GPU visible ({seen.line()}): nothing to check here; "
               "the CPU paths are covered by the tests")
        return 0
    report(f"gpu-check: {seen.line()}")
    import onnxruntime as ort

    from emberwatch.ml.backbone import embed, export_backbone_onnx, load_backbone
    from emberwatch.ml.settings import MLSettings

    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="emberwatch-gpu-check-") as tmp:
        backbone = load_backbone(MLSettings(state_dir=Path(tmp), image_size=size))
        images, labels = tiles(n, size)
        start = time.perf_counter()
        tf_emb = embed(backbone, images)
        rows.append(("TensorFlow embedding (GPU if visible)", f"{len(images) / (time.perf_counter() - start):.1f} img/s"))
        predict, s32, acc32 = train_head(tf_emb, labels, mixed=False)
        _, s16, acc16 = train_head(tf_emb, labels, mixed=True)
        rows.append(("head training float32 / mixed_float16", f"{s32:.1f} s / {s16:.1f} s; "
                                                              f"val accuracy {acc32:.3f} / {acc16:.3f}"))
        onnx_path = export_backbone_onnx(backbone, Path(tmp) / "onnx") / "backbone.onnx"
        cpu = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        cpu_emb = embed_with(cpu, images)
        rows.append(("CPU provider (reference)", f"{images_per_second(cpu, images, 1, seconds):.1f} / "
                                                 f"{images_per_second(cpu, images, 8, seconds):.1f} img/s (batch 1 / 8)"))
        failed = False
        for provider in seen.onnxruntime:
            session = ort.InferenceSession(str(onnx_path), providers=[
                provider_options(provider, Path(tmp) / "trt-cache"), "CPUExecutionProvider"])
            agree = agreement(cpu_emb, embed_with(session, images), predict)
            ok = agree["dp_max"] <= FP16_TOLERANCE and agree["decisions_differ"] <= max(1, len(images) // 100)
            failed |= not ok
            rows.append((provider, f"{images_per_second(session, images, 1, seconds):.1f} / "
                                   f"{images_per_second(session, images, 8, seconds):.1f} img/s (batch 1 / 8); "
                                   f"embedding diff {agree['emb_rel']:.1e} of range, |dP| max {agree['dp_max']:.1e}, "
                                   f"{agree['decisions_differ']} of {len(images)} decisions differ"
                                   + ("" if ok else f" — BEYOND the FP16 tolerance {FP16_TOLERANCE:g}")))
        if not seen.onnxruntime:
            rows.append(("ONNX Runtime GPU providers", "none: install onnxruntime-gpu (same version) to run the "
                                                       "backbone on the GPU"))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        report(f"  {key.ljust(width)}  {value}")
    return 1 if failed else 0
