"""The durable index of known tiles (SQLite under the state dir): a restart loses none of them.

The handler records a tile here before it returns, and the shared consumer commits the offset only
after that, so every committed tile is on disk.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from services.trainer.models import TileRecord

SCHEMA = """
CREATE TABLE IF NOT EXISTS tiles (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    tile_id    TEXT NOT NULL UNIQUE,
    label      TEXT NOT NULL,
    split      TEXT NOT NULL,
    uri        TEXT NOT NULL,
    fire_key   TEXT NOT NULL DEFAULT '',
    topic      TEXT,
    partition  INTEGER,
    "offset"   INTEGER,
    event_id   TEXT,
    received_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class TileIndex:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        with self._connect() as db:
            db.executescript(SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            db = sqlite3.connect(self.path, timeout=30)
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")
                with db:
                    yield db
            finally:
                db.close()

    def record(
        self,
        *,
        tile_id: str,
        label: str,
        split: str,
        uri: str,
        fire_key: str = "",
        event_id: str | None = None,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
    ) -> bool:
        """Store a tile (durably). True when it is new; a known tile keeps its first record."""
        with self._connect() as db:
            cur = db.execute(
                'INSERT INTO tiles (tile_id, label, split, uri, fire_key, topic, partition, "offset", '
                "event_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(tile_id) DO NOTHING",
                (tile_id, label, split, uri, fire_key, topic, partition, offset, event_id),
            )
            return cur.rowcount == 1

    def all(self) -> list[TileRecord]:
        with self._connect() as db:
            rows = db.execute(
                'SELECT seq, tile_id, label, split, uri, fire_key, topic, partition, "offset" '
                "FROM tiles ORDER BY seq"
            ).fetchall()
        return [
            TileRecord(seq=r[0], tile_id=r[1], label=r[2], split=r[3], uri=r[4], fire_key=r[5],
                       topic=r[6], partition=r[7], offset=r[8])
            for r in rows
        ]

    def count(self) -> int:
        with self._connect() as db:
            return int(db.execute("SELECT COUNT(*) FROM tiles").fetchone()[0])

    def max_seq(self) -> int:
        with self._connect() as db:
            return int(db.execute("SELECT COALESCE(MAX(seq), 0) FROM tiles").fetchone()[0])

    def last_trained_seq(self) -> int:
        with self._connect() as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'last_trained_seq'").fetchone()
        return int(row[0]) if row else 0

    def mark_trained(self, seq: int) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT INTO meta (key, value) VALUES ('last_trained_seq', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (str(seq),),
            )

    def new_since_training(self) -> int:
        last = self.last_trained_seq()
        with self._connect() as db:
            return int(db.execute("SELECT COUNT(*) FROM tiles WHERE seq > ?", (last,)).fetchone()[0])
