"""The dataset of one training: which tiles, whether they pass the checks, and its digest."""

from __future__ import annotations

import hashlib

import numpy as np

from emberwatch.ml import CLASSES, LABEL_INDEX
from services.trainer.models import DataCheck, TileRecord

SPLITS = ("train", "val", "test")


def counts_by_split(records: list[TileRecord]) -> dict[str, dict[str, int]]:
    counts = {s: {c: 0 for c in CLASSES} for s in SPLITS}
    for r in records:
        counts[r.split][r.label] += 1
    return counts


def check_dataset(
    records: list[TileRecord], *, min_train: int, min_val: int, min_test: int
) -> DataCheck:
    """Minimum examples per class and split; the class balance (share of wildfire) per split."""
    counts = counts_by_split(records)
    minimum = {"train": min_train, "val": min_val, "test": min_test}
    problems = []
    for split in SPLITS:
        for label in CLASSES:
            have, need = counts[split][label], minimum[split]
            if have < need:
                problems.append(f"{split}/{label}: {have} tiles, need at least {need}")
    balance = {}
    for split in SPLITS:
        total = sum(counts[split].values())
        balance[split] = round(counts[split]["wildfire"] / total, 4) if total else 0.0
    return DataCheck(counts=counts, problems=problems, balance=balance)


def dataset_digest(records: list[TileRecord], backbone_id: str) -> str:
    """sha256 of the sorted (tile id, label, split) rows and the backbone: same data ⇒ same digest."""
    h = hashlib.sha256(f"backbone={backbone_id}\n".encode())
    for r in sorted(records, key=lambda r: r.tile_id):
        h.update(f"{r.tile_id}\t{r.label}\t{r.split}\n".encode())
    return h.hexdigest()


def labels_of(records: list[TileRecord]) -> np.ndarray:
    return np.asarray([LABEL_INDEX[r.label] for r in records], dtype=np.int64)


def by_split(records: list[TileRecord]) -> dict[str, list[TileRecord]]:
    out: dict[str, list[TileRecord]] = {s: [] for s in SPLITS}
    for r in sorted(records, key=lambda r: r.tile_id):
        out[r.split].append(r)
    return out
