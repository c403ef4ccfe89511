"""The embedding cache (docs/architecture.md#compute-once): one embedding per (tile id, backbone id),
computed once.

Layout: ``<state_dir>/embeddings/<backbone_id>/shard-*.npz``, each shard holding ``tile_ids`` and
``embeddings`` (float32). A write is a new shard written to a temporary name, fsynced and renamed,
so a crash leaves either the whole shard or nothing. Loading reads a few shards, not one file per
tile; many small shards are compacted into one.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import numpy as np

from emberwatch.common.atomic_files import atomic_writer, fsync_dir


class EmbeddingStore:
    def __init__(self, root: Path, backbone_id: str, embedding_dim: int, *, max_shards: int = 16) -> None:
        self.dir = Path(root) / backbone_id
        self.dir.mkdir(parents=True, exist_ok=True)
        self.backbone_id = backbone_id
        self.dim = embedding_dim
        self.max_shards = max_shards
        self._lock = threading.Lock()
        self._loaded: set[str] = set()
        self._index: dict[str, int] = {}
        self._blocks: list[np.ndarray] = []
        self._matrix = np.empty((0, embedding_dim), dtype=np.float32)
        self._dirty = False

    # --- reading -----------------------------------------------------------------------------
    def _shards(self) -> list[Path]:
        return sorted(self.dir.glob("shard-*.npz"))

    def _refresh(self) -> None:
        for shard in self._shards():
            if shard.name in self._loaded:
                continue
            with np.load(shard) as data:
                ids = [str(t) for t in data["tile_ids"]]
                emb = np.asarray(data["embeddings"], dtype=np.float32)
            self._add(ids, emb)
            self._loaded.add(shard.name)

    def _add(self, ids: list[str], emb: np.ndarray) -> None:
        if emb.shape != (len(ids), self.dim):
            raise ValueError(f"embeddings must be ({len(ids)}, {self.dim}), got {emb.shape}")
        base = sum(len(b) for b in self._blocks)
        keep = [i for i, t in enumerate(ids) if t not in self._index]
        for j, i in enumerate(keep):
            self._index[ids[i]] = base + j
        if keep:
            self._blocks.append(emb[keep])
            self._dirty = True

    def _rows(self) -> np.ndarray:
        if self._dirty:
            self._matrix = np.concatenate(self._blocks) if self._blocks else self._matrix
            self._blocks = [self._matrix]
            self._dirty = False
        return self._matrix

    def __len__(self) -> int:
        with self._lock:
            self._refresh()
            return len(self._index)

    def __contains__(self, tile_id: str) -> bool:
        with self._lock:
            self._refresh()
            return tile_id in self._index

    def missing(self, tile_ids: list[str]) -> list[str]:
        """The ids among ``tile_ids`` that have no embedding yet (order kept)."""
        with self._lock:
            self._refresh()
            return [t for t in tile_ids if t not in self._index]

    def get(self, tile_ids: list[str]) -> np.ndarray:
        """Embeddings of ``tile_ids`` in that order (every id must be present)."""
        with self._lock:
            self._refresh()
            rows = self._rows()
            try:
                idx = [self._index[t] for t in tile_ids]
            except KeyError as exc:
                raise KeyError(f"no embedding for tile {exc.args[0]} under {self.backbone_id}") from None
            return rows[idx] if idx else np.empty((0, self.dim), dtype=np.float32)

    # --- writing -----------------------------------------------------------------------------
    def put(self, tile_ids: list[str], embeddings: np.ndarray) -> Path | None:
        """Store new embeddings durably (one atomic shard). Known ids are ignored."""
        emb = np.asarray(embeddings, dtype=np.float32)
        if emb.shape != (len(tile_ids), self.dim):
            raise ValueError(f"embeddings must be ({len(tile_ids)}, {self.dim}), got {emb.shape}")
        with self._lock:
            self._refresh()
            keep = [i for i, t in enumerate(tile_ids) if t not in self._index]
            if not keep:
                return None
            ids = [tile_ids[i] for i in keep]
            path = self._write_shard(ids, emb[keep])
            self._add(ids, emb[keep])
            self._loaded.add(path.name)
            if len(self._loaded) > self.max_shards:
                self._compact()
            return path

    def _write_shard(self, ids: list[str], emb: np.ndarray, name: str | None = None) -> Path:
        name = name or f"shard-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.npz"
        final = self.dir / name
        with atomic_writer(final) as fh:
            np.savez(fh, tile_ids=np.asarray(ids, dtype="U64"), embeddings=emb)
        fsync_dir(self.dir)
        return final

    def _compact(self) -> None:
        """Merge every shard into one (written first, old ones removed after)."""
        old = [p for p in self._shards() if p.name in self._loaded]
        ids = sorted(self._index, key=self._index.get)
        merged = self._write_shard(ids, self._rows())
        for p in old:
            p.unlink(missing_ok=True)
        self._loaded = {merged.name}

    def shard_count(self) -> int:
        return len(self._shards())
