"""Infra validation of a loaded head version: signature, shapes, known outputs, latency.

What it demands of the known images (held-out tiles the trainer scored with its Keras model):
the same decision on every one (the trainer picks them with a clear margin from 0.5), and
probabilities within ``tolerance`` of Keras'. The tolerance comes from the differences measured
between TensorFlow and OpenVINO FP32 numerics at each image size (``benchmarks/serving.md``):
they stay below 1e-4 with the bounded head, so the default 2e-3 fails only a real defect
(a wrong backbone, preprocessing or head), never rounding.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from emberwatch.common.triton_client import Triton, TritonError, png_bytes
from emberwatch.ml import CLASSES

if TYPE_CHECKING:
    from services.gatekeeper.registry import CandidateFiles
    from services.gatekeeper.serving.control import ServingControl
    from services.gatekeeper.settings import GatekeeperSettings


@dataclass
class ValidationReport:
    problems: list[str] = field(default_factory=list)
    max_abs_diff: float | None = None
    decisions_differ: int | None = None
    p50_latency_ms: float | None = None
    n_known: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def metrics(self) -> dict[str, float]:
        out = {"validation_known_images": float(self.n_known)}
        if self.max_abs_diff is not None:
            out["validation_max_abs_diff"] = self.max_abs_diff
        if self.decisions_differ is not None:
            out["validation_decisions_differ"] = float(self.decisions_differ)
        if self.p50_latency_ms is not None:
            out["validation_p50_latency_ms"] = self.p50_latency_ms
        return out


def check_head_meta(meta: dict, backbone: dict | None) -> list[str]:
    """Before loading: the head fits the served backbone and speaks the class order."""
    problems = []
    if list(meta.get("classes", [])) != list(CLASSES):
        problems.append(f"head classes {meta.get('classes')} != {list(CLASSES)}")
    if backbone is not None:
        if meta.get("backbone_id") != backbone.get("backbone_id"):
            problems.append(f"head was trained on backbone {meta.get('backbone_id')}, "
                            f"Triton serves {backbone.get('backbone_id')}")
        if int(meta.get("image_size", -1)) != int(backbone.get("image_size", -2)):
            problems.append(f"head image_size {meta.get('image_size')} != backbone "
                            f"{backbone.get('image_size')}")
    return problems


HEAD_ARRAYS = ("mean", "variance", "w1", "b1", "w2", "b2")


def check_head_files(triton_dir: Path) -> list[str]:
    """Before Triton sees it: the head's ``head.npz`` reads as plain arrays with the parameters the
    serving model needs. A corrupt file is refused here, so Triton never has to fail a load (a failed
    python-backend load has crashed Triton 24.x with SIGSEGV while it cleaned the stub up)."""
    try:
        with np.load(triton_dir / "head.npz", allow_pickle=False) as data:
            missing = [k for k in HEAD_ARRAYS if k not in data.files]
            if missing:
                return [f"Triton could not load the head: head.npz lacks {', '.join(missing)}"]
            for key in HEAD_ARRAYS:
                np.asarray(data[key], dtype=np.float32)
    except Exception as exc:  # noqa: BLE001 - whatever makes the file unreadable refuses it
        return [f"Triton could not load the head: head.npz is unreadable ({type(exc).__name__}: {exc})"[:500]]
    return []


# How much further than FP32 the served probabilities may move from the trainer's, per precision the
# backbone is served at (backbone.json "precision"). FP16 keeps 11 significant bits (TensorRT FP16 on
# the GPU), INT8 about 8 (post-training quantisation); measured on CPU with the ONNX cast to FP16:
# benchmarks/serving.md ("Precision and infra validation").
PRECISION_FACTOR = {"fp32": 1.0, "fp16": 10.0, "int8": 25.0}


def tolerance_for(precision: str | None, fp32_tolerance: float) -> float:
    """The infra-validation tolerance for a backbone served at ``precision`` (unknown: FP32's)."""
    return fp32_tolerance * PRECISION_FACTOR.get((precision or "fp32").lower(), 1.0)


def validate_loaded(triton: Triton, version: str, known_images: Path, *, image_size: int,
                    tolerance: float, max_latency_ms: float, warmup: int = 3,
                    timed: int = 5, head_model: str = "head") -> ValidationReport:
    report = ValidationReport()
    if not triton.ready(head_model, version):
        report.problems.append(f"head version {version} is not ready in Triton")
        return report
    try:
        report.problems += [f"signature: {p}" for p in triton.signature_problems()]
    except Exception as exc:  # noqa: BLE001 - any failure to describe the model is a failure
        report.problems.append(f"signature: {exc}")
    with np.load(known_images) as data:
        images, expected = np.asarray(data["images"]), np.asarray(data["probs"], dtype=np.float32)
    report.n_known = int(len(images))
    if images.ndim != 4 or images.shape[1:] != (image_size, image_size, 3) or len(images) == 0:
        report.problems.append(f"known images have shape {images.shape}, expected (N>0, {image_size}, "
                               f"{image_size}, 3)")
        return report
    if expected.shape != (len(images), 2):
        report.problems.append(f"known probabilities have shape {expected.shape}, expected ({len(images)}, 2)")
        return report
    encoded = [png_bytes(img) for img in images]
    try:
        for _ in range(warmup):
            triton.score_bytes(encoded[:1], version)
        scores = triton.score_many(encoded, version)
    except TritonError as exc:
        report.problems.append(f"inference on known images failed: {exc}")
        return report
    got = scores.probs.get(version)
    if got is None or got.shape != expected.shape:
        report.problems.append(f"outputs have shape {None if got is None else got.shape}, expected {expected.shape}")
        return report
    if not np.all(np.isfinite(got)) or np.abs(got.sum(axis=1) - 1).max() > 1e-3:
        report.problems.append("outputs are not probabilities (non-finite or rows not summing to 1)")
    report.max_abs_diff = float(np.abs(got - expected).max())
    differ = np.nonzero(got.argmax(axis=1) != expected.argmax(axis=1))[0]
    report.decisions_differ = int(len(differ))
    if len(differ):
        report.problems.append(
            f"{len(differ)} of {len(expected)} known images get another decision than in training "
            f"(image {int(differ[0])}: Triton P(wildfire)={got[differ[0], 1]:.4f}, "
            f"Keras {expected[differ[0], 1]:.4f})")
    if report.max_abs_diff > tolerance:
        report.problems.append(f"outputs differ from the trainer's Keras outputs by "
                               f"{report.max_abs_diff:.2e} > {tolerance:.1e}")
    latencies = []
    for i in range(timed):
        start = time.perf_counter()
        triton.score_bytes(encoded[i % len(encoded):i % len(encoded) + 1], version)
        latencies.append((time.perf_counter() - start) * 1000)
    report.p50_latency_ms = float(np.median(latencies))
    if report.p50_latency_ms > max_latency_ms:
        report.problems.append(f"p50 latency {report.p50_latency_ms:.0f} ms > {max_latency_ms:.0f} ms")
    return report


def validate_in_triton(serving: ServingControl, version: str, files: CandidateFiles,
                       settings: GatekeeperSettings) -> tuple[list[str], ValidationReport | None]:
    """A head version placed and loaded beside the served ones, then infra-validated: the problems
    (none: it serves correctly) and the report, when validation got that far. A head that fails is
    unloaded again, unless it serves a role. The one sequence for candidates and ``promote``."""
    version = str(version)
    try:
        head_meta = json.loads((files.triton_dir / "head.json").read_text())
    except (OSError, ValueError) as exc:
        return [f"unreadable head.json: {exc}"], None
    problems = check_head_files(files.triton_dir)
    if problems:
        return problems, None
    problems = serving.ensure_backbone(head_meta, files.triton_dir / "backbone", files.triton_dir / "calibration.npz")
    problems += check_head_meta(head_meta, serving.backbone())
    if problems:
        return problems, None
    serving_roles = set(serving.roles().values())
    if version not in serving_roles:
        try:
            serving.add_head(version, files.triton_dir)
        except TritonError as exc:
            return [f"Triton could not load the head: {exc}"], None
    report = validate_loaded(
        serving.triton, version, files.known_images, image_size=int(head_meta["image_size"]),
        tolerance=serving.validation_tolerance(), max_latency_ms=settings.gatekeeper_validation_max_latency_ms,
        warmup=settings.gatekeeper_validation_warmup_requests, timed=settings.gatekeeper_validation_latency_requests,
        head_model=serving.models.head)
    if not report.ok:
        if version not in serving_roles:
            serving.drop_head(version)
        return list(report.problems), report
    return [], report
