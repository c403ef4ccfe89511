"""The durable index of known tiles (SQLite under the state dir): a restart loses none of them.

The handler records a tile here before it returns, and the shared consumer commits the offset only
after that, so every committed tile is on disk.

A ``tiles.relabelled.v1`` event (a fire reported later lies near a fire-free tile) is kept in its
own table, so it holds whichever arrives first, the tile or its relabel: :meth:`TileIndex.all`
leaves retired tiles out and gives relabelled ones their new label. A relabel wins over a retire
(the image shows the fire); otherwise the first event for a tile stays.

A person's label (``labels.feedback.v1``, from the console or the Discord bot) is kept in a third
table and wins over both: the person looked at the image. The latest feedback on a tile (by when it
was given) holds; the same event delivered twice counts once.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from emberwatch.contracts.products import MAPBOX
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
CREATE TABLE IF NOT EXISTS relabels (
    tile_id    TEXT PRIMARY KEY,
    action     TEXT NOT NULL,
    label      TEXT,
    fire_key   TEXT NOT NULL,
    event_id   TEXT,
    received_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE TABLE IF NOT EXISTS human_labels (
    tile_id     TEXT PRIMARY KEY,
    label       TEXT NOT NULL,
    labelled_by TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    given_at    TEXT NOT NULL
);
"""
# added after the first release: migrated in place (tiles recorded before products were known are Mapbox's)
ADDED_COLUMNS = {"lat": "REAL", "lon": "REAL", "product": "TEXT NOT NULL DEFAULT 'mapbox'",
                 "dnbr": "REAL", "hot_pixels": "INTEGER", "visible": "INTEGER"}
LAST_TRAINED = "last_trained_seq"  # the Mapbox line's key, as before lines existed; others append ":<product>"


def _trained_key(product: str) -> str:
    return LAST_TRAINED if product == MAPBOX else f"{LAST_TRAINED}:{product}"


class TileIndex:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        with self._connect() as db:
            db.executescript(SCHEMA)
            have = {row[1] for row in db.execute("PRAGMA table_info(tiles)")}
            for name, kind in ADDED_COLUMNS.items():
                if name not in have:
                    db.execute(f"ALTER TABLE tiles ADD COLUMN {name} {kind}")

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
        lat: float | None = None,
        lon: float | None = None,
        product: str = MAPBOX,
        dnbr: float | None = None,
        hot_pixels: int | None = None,
        visible: bool | None = None,
        event_id: str | None = None,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
    ) -> bool:
        """Store a tile (durably). True when it is new; a known tile keeps its first record."""
        return self.record_many([dict(tile_id=tile_id, label=label, split=split, uri=uri,
                                      fire_key=fire_key, lat=lat, lon=lon, product=product, event_id=event_id,
                                      topic=topic, partition=partition, offset=offset, dnbr=dnbr,
                                      hot_pixels=hot_pixels, visible=visible)]) == 1

    def record_many(self, tiles: list[dict]) -> int:
        """Store tiles (``record``'s fields each) in one durable transaction; how many were new.

        Idempotent as a whole: a tile already held (from an earlier delivery of the same batch, or
        twice in this one) keeps its first record and does not count.
        """
        if not tiles:
            return 0
        rows = [(t["tile_id"], t["label"], t["split"], t["uri"], t.get("fire_key", ""), t.get("lat"),
                 t.get("lon"), t.get("product") or MAPBOX, t.get("topic"), t.get("partition"), t.get("offset"),
                 t.get("event_id"), t.get("dnbr"), t.get("hot_pixels"),
                 None if t.get("visible") is None else int(bool(t["visible"])))
                for t in tiles]
        with self._connect() as db:
            cur = db.executemany(
                'INSERT INTO tiles (tile_id, label, split, uri, fire_key, lat, lon, product, topic, partition, '
                '"offset", event_id, dnbr, hot_pixels, visible) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) '
                "ON CONFLICT(tile_id) DO NOTHING",
                rows,
            )
            return max(0, cur.rowcount)

    def relabel(self, *, tile_id: str, action: str, label: str | None, fire_key: str,
                event_id: str | None = None) -> bool:
        """Record a retire or relabel (durably). True when it changed what the tile counts as."""
        if action not in ("retire", "relabel") or (action == "relabel") != (label is not None):
            raise ValueError(f"bad relabel: action={action!r} label={label!r}")
        with self._connect() as db:
            row = db.execute("SELECT action FROM relabels WHERE tile_id = ?", (tile_id,)).fetchone()
            if row is not None and not (row[0] == "retire" and action == "relabel"):
                return False
            db.execute(
                "INSERT INTO relabels (tile_id, action, label, fire_key, event_id) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(tile_id) DO UPDATE SET action = excluded.action, label = excluded.label, "
                "fire_key = excluded.fire_key, event_id = excluded.event_id",
                (tile_id, action, label, fire_key, event_id),
            )
            return True

    def record_human_label(self, *, tile_id: str, label: str, labelled_by: str, event_id: str,
                           given_at: str) -> bool:
        """Record a person's label (durably). True when it changed the tile's human label: a
        redelivered event or older feedback than the one held changes nothing."""
        if label not in ("wildfire", "nowildfire"):
            raise ValueError(f"bad human label: {label!r}")
        with self._connect() as db:
            row = db.execute("SELECT event_id, given_at FROM human_labels WHERE tile_id = ?", (tile_id,)).fetchone()
            if row is not None and (row[0] == event_id or row[1] > given_at):
                return False
            db.execute(
                "INSERT INTO human_labels (tile_id, label, labelled_by, event_id, given_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(tile_id) DO UPDATE SET label = excluded.label, labelled_by = excluded.labelled_by, "
                "event_id = excluded.event_id, given_at = excluded.given_at",
                (tile_id, label, labelled_by, event_id, given_at),
            )
            return True

    def human_label_counts(self) -> dict[str, int]:
        """Known tiles with a person's label, and how many of those differ from the automatic label."""
        with self._connect() as db:
            n, changed = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(CASE WHEN h.label != t.label THEN 1 ELSE 0 END), 0) "
                "FROM human_labels h JOIN tiles t ON t.tile_id = h.tile_id").fetchone()
        return {"human": int(n), "human_changed": int(changed)}

    def relabel_counts(self) -> dict[str, int]:
        """Known tiles retired and relabelled so far (relabels of tiles not yet known are not counted)."""
        with self._connect() as db:
            rows = db.execute("SELECT r.action, COUNT(*) FROM relabels r JOIN tiles t ON t.tile_id = r.tile_id "
                              "GROUP BY r.action").fetchall()
        out = {"retire": 0, "relabel": 0}
        out.update({a: int(n) for a, n in rows})
        return out

    def all(self, product: str | None = None) -> list[TileRecord]:
        """Every usable tile (of ``product``'s line when given): a person's label first; else retired
        ones left out, relabelled ones with their new label."""
        where, args = ("AND t.product = ?", (product,)) if product is not None else ("", ())
        with self._connect() as db:
            rows = db.execute(
                "SELECT t.seq, t.tile_id, CASE WHEN h.label IS NOT NULL THEN h.label "
                "WHEN r.action = 'relabel' THEN r.label ELSE t.label END, "
                't.split, t.uri, t.fire_key, t.topic, t.partition, t."offset", t.lat, t.lon, t.product, '
                "t.dnbr, t.hot_pixels, t.visible FROM tiles t LEFT JOIN relabels r ON r.tile_id = t.tile_id "
                "LEFT JOIN human_labels h ON h.tile_id = t.tile_id "
                f"WHERE (h.label IS NOT NULL OR r.action IS NULL OR r.action != 'retire') {where} ORDER BY t.seq",
                args,
            ).fetchall()
        return [
            TileRecord(seq=r[0], tile_id=r[1], label=r[2], split=r[3], uri=r[4], fire_key=r[5],
                       topic=r[6], partition=r[7], offset=r[8], lat=r[9], lon=r[10], product=r[11], dnbr=r[12],
                       hot_pixels=r[13], visible=None if r[14] is None else bool(r[14]))
            for r in rows
        ]

    def count(self) -> int:
        with self._connect() as db:
            return int(db.execute("SELECT COUNT(*) FROM tiles").fetchone()[0])

    def product_of(self, tile_id: str) -> str | None:
        """The product of a known tile (its line), None for a tile not recorded (yet)."""
        with self._connect() as db:
            row = db.execute("SELECT product FROM tiles WHERE tile_id = ?", (tile_id,)).fetchone()
        return row[0] if row else None

    def max_seq(self) -> int:
        with self._connect() as db:
            return int(db.execute("SELECT COALESCE(MAX(seq), 0) FROM tiles").fetchone()[0])

    def last_trained_seq(self, product: str = MAPBOX) -> int:
        with self._connect() as db:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (_trained_key(product),)).fetchone()
        return int(row[0]) if row else 0

    def mark_trained(self, seq: int, product: str = MAPBOX) -> None:
        """The tiles up to ``seq`` count as trained on by ``product``'s line (each line keeps its own)."""
        with self._connect() as db:
            db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (_trained_key(product), str(seq)),
            )

    def new_since_training(self, product: str = MAPBOX) -> int:
        """Tiles of ``product`` recorded since its line last trained."""
        last = self.last_trained_seq(product)
        with self._connect() as db:
            return int(db.execute("SELECT COUNT(*) FROM tiles WHERE seq > ? AND product = ?",
                                  (last, product)).fetchone()[0])
