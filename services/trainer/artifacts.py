"""Write the files a run carries: triton/, validation/, test_split.json, lineage, plots.

See docs/architecture.md#what-a-candidate-run-carries.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from emberwatch.ml.head import export_head_npz
from services.trainer.models import TileRecord


def pick_known(records: list[TileRecord], n: int) -> list[TileRecord]:
    """Up to ``n`` held-out tiles, alternating labels so both classes are represented."""
    by_label: dict[str, list[TileRecord]] = {}
    for r in sorted(records, key=lambda r: r.tile_id):
        by_label.setdefault(r.label, []).append(r)
    picked: list[TileRecord] = []
    queues = [by_label[k] for k in sorted(by_label)]
    i = 0
    while len(picked) < n and any(queues):
        q = queues[i % len(queues)]
        if q:
            picked.append(q.pop(0))
        i += 1
    return picked


def write_artifacts(
    out: Path,
    *,
    head_model,
    backbone_id: str,
    image_size: int,
    known: list[TileRecord],
    known_images: np.ndarray,
    known_probs: np.ndarray,
    test_records: list[TileRecord],
    all_records: list[TileRecord],
    dataset_info: dict,
    trials: list[dict],
    calibration_images: np.ndarray | None = None,
) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    export_head_npz(head_model, out / "triton", backbone_id=backbone_id, image_size=image_size)
    if calibration_images is not None and len(calibration_images):
        # training tiles for the INT8 option's calibration (services/gatekeeper: openvino-cpu-int8)
        np.savez_compressed(out / "triton" / "calibration.npz", images=np.asarray(calibration_images, np.uint8))
    (out / "validation").mkdir(exist_ok=True)
    np.savez(
        out / "validation" / "known_images.npz",
        images=np.asarray(known_images, dtype=np.uint8),
        probs=np.asarray(known_probs, dtype=np.float32),
        tile_ids=np.asarray([r.tile_id for r in known], dtype="U64"),
        labels=np.asarray([r.label for r in known], dtype="U16"),
    )
    (out / "test_split.json").write_text(json.dumps(
        [{"tile_id": r.tile_id, "label": r.label, "uri": r.uri} for r in test_records], indent=1))
    (out / "lineage").mkdir(exist_ok=True)
    (out / "lineage" / "tiles.json").write_text(json.dumps([r.lineage() for r in all_records]))
    (out / "dataset.json").write_text(json.dumps(dataset_info, indent=2))
    (out / "search").mkdir(exist_ok=True)
    (out / "search" / "trials.json").write_text(json.dumps(trials, indent=1))
    return out
