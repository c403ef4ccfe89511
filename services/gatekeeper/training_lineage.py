"""Which tiles each model version was trained on, so that none of them can reach a shadow comparison.

A run's ``lineage/tiles.json`` (written by the trainer) lists every tile it used with its split.
Tiles of the ``train`` and ``val`` splits shaped the model (weights, early stopping, temperature), so
a pair on one of them would flatter that model: the shadow and the test evaluation skip them for
either model in the comparison. A tile reaches the gatekeeper again through a consumer backlog,
``emberwatch replay`` or ``--republish``.

The tile ids are kept per version under ``<state>/gatekeeper/lineage/<version>.json`` (downloaded
once from MLflow) and held in memory while the version is compared.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from emberwatch.common.atomic_files import atomic_write_text
from emberwatch.common.safe_paths import UnsafePath, child_path

FITTED_SPLITS = ("train", "val")
_VERSION = re.compile(r"[0-9]{1,18}")


def fitted_tile_ids(lineage_rows: list[dict]) -> list[str]:
    """The tiles of a run's lineage that the model was fitted on (train and val splits)."""
    return sorted({str(r["tile_id"]) for r in lineage_rows if r.get("split") in FITTED_SPLITS and "tile_id" in r})


class TrainingLineage:
    def __init__(self, root: Path, registry) -> None:
        self.root = Path(root) / "lineage"
        self.registry = registry
        self._cache: dict[str, frozenset[str]] = {}

    def remember(self, version: str, lineage_file: Path | None) -> frozenset[str]:
        """Store a candidate's fitted tiles from its downloaded ``lineage/tiles.json``."""
        rows = json.loads(lineage_file.read_text()) if lineage_file is not None and lineage_file.is_file() else []
        ids = fitted_tile_ids(rows)
        atomic_write_text(self._path(version), json.dumps(ids))
        self._cache[str(version)] = frozenset(ids)
        return self._cache[str(version)]

    def trained_on(self, version: str) -> frozenset[str]:
        """The tiles ``version`` was fitted on (from the local copy, else from its MLflow run)."""
        version = str(version)
        if version in self._cache:
            return self._cache[version]
        path = self._path(version)
        if path.is_file():
            self._cache[version] = frozenset(json.loads(path.read_text()))
            return self._cache[version]
        # MLflow down: the error propagates, so the candidate or tile is retried by its consumer
        # rather than compared on tiles that might be training tiles
        ids = fitted_tile_ids(self.registry.download_lineage(version))
        atomic_write_text(path, json.dumps(ids))
        self._cache[version] = frozenset(ids)
        return self._cache[version]

    def _path(self, version: str) -> Path:
        """``<root>/<version>.json``: a version is digits (``UnsafePath`` for anything that would leave the root)."""
        if not _VERSION.fullmatch(str(version)):
            raise UnsafePath(f"a model version is digits, got {str(version)[:40]!r}")
        return child_path(self.root, f"{version}.json")

    def excluded(self, *versions: str) -> frozenset[str]:
        out: frozenset[str] = frozenset()
        for v in versions:
            out |= self.trained_on(v)
        return out
