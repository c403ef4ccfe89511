"""Which live tiles each champion version has scored (``<gatekeeper>/live_scores.sqlite3``).

Between shadows the champion scores every live tile (``tiles.ready.v1``) for its quality metrics and
for detections. A replayed topic, a reset consumer group or a redelivered batch brings tiles it has
already scored: they are skipped, so the quality metrics count each tile once per version and a
backlog of old tiles drains without inference. A tile is recorded after it was scored and before its
offset is committed (SQLite WAL: a process crash keeps every committed row); a crash in between
scores it once more, as at-least-once delivery allows.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS live_scores (
    version  TEXT NOT NULL,
    tile_id  TEXT NOT NULL,
    wildfire REAL NOT NULL,
    PRIMARY KEY (version, tile_id)
) WITHOUT ROWID;
"""


class LiveScores:
    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.path = root / "live_scores.sqlite3"
        self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL: durable across a process crash
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()

    def scored(self, version: str, tile_ids: list[str]) -> set[str]:
        """Those of ``tile_ids`` that ``version`` has scored live."""
        found: set[str] = set()
        with self._lock:
            for start in range(0, len(tile_ids), 500):
                chunk = tile_ids[start:start + 500]
                marks = ",".join("?" * len(chunk))
                found.update(t for (t,) in self._db.execute(
                    f"SELECT tile_id FROM live_scores WHERE version = ? AND tile_id IN ({marks})",  # noqa: S608
                    [version, *chunk]))
        return found

    def record(self, version: str, tile_id: str, wildfire: float) -> None:
        self.record_many(version, [(tile_id, wildfire)])

    def record_many(self, version: str, scores: list[tuple[str, float]]) -> None:
        """``record`` for many tiles in one transaction."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(
                    "INSERT OR IGNORE INTO live_scores (version, tile_id, wildfire) VALUES (?, ?, ?)",
                    [(version, t, float(w)) for t, w in scores])
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
