"""Durable delivery bookkeeping: which events were posted, which wait for a digest (SQLite).

``deliveries`` has one row per event id: ``pending`` from just before the webhook request,
``posted`` (with Discord's message id) once Discord confirmed it (``?wait=true``). The row is
written in a committed transaction (WAL, ``synchronous=FULL``) before the Kafka offset is committed.

The crash window: if the process dies after Discord accepted a post and before the ``posted`` row
is committed, the Kafka message is redelivered and the row is still ``pending``. Discord's webhook
API has no idempotency key, so we cannot ask whether it arrived. The notifier then posts again,
marked as a possible repeat (``emberwatch_notifier_uncertain_reposts_total``): at most one extra
post per crash, never a lost notification. Outside that window (milliseconds per post), replays
and restarts post nothing new.

``digest_queue`` holds low-priority events (their JSON) until a digest carrying them is
confirmed; the rows are removed and the events marked ``posted`` in one transaction.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    event_id    TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('pending', 'posted')),
    message_id  TEXT,
    attempts    INTEGER NOT NULL DEFAULT 0,
    first_try_at REAL NOT NULL,
    posted_at   REAL
);
CREATE TABLE IF NOT EXISTS digest_queue (
    event_id    TEXT PRIMARY KEY,
    topic       TEXT NOT NULL,
    body        BLOB NOT NULL,
    enqueued_at REAL NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS digest_queue_by_time ON digest_queue (enqueued_at);
"""


@dataclass(frozen=True)
class Queued:
    event_id: str
    topic: str
    body: bytes
    enqueued_at: float
    attempts: int


class DeliveryStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- single events ----------------------------------------------------------------------
    def state(self, event_id: str) -> str | None:
        """``posted``, ``pending``, ``queued`` (waiting for a digest) or None (never seen)."""
        with self._lock:
            row = self._db.execute("SELECT state FROM deliveries WHERE event_id = ?", (event_id,)).fetchone()
            if row:
                return str(row[0])
            queued = self._db.execute("SELECT 1 FROM digest_queue WHERE event_id = ?", (event_id,)).fetchone()
        return "queued" if queued else None

    def states(self, event_ids: list[str]) -> dict[str, str]:
        """``state`` of many events in two queries: only those seen are in the answer."""
        if not event_ids:
            return {}
        found: dict[str, str] = {}
        with self._lock:
            for start in range(0, len(event_ids), 500):  # well under SQLite's bound on parameters
                chunk = event_ids[start:start + 500]
                marks = ",".join("?" * len(chunk))
                found.update({e: "queued" for (e,) in self._db.execute(
                    f"SELECT event_id FROM digest_queue WHERE event_id IN ({marks})", chunk)})  # noqa: S608
                found.update({e: str(state) for e, state in self._db.execute(
                    f"SELECT event_id, state FROM deliveries WHERE event_id IN ({marks})", chunk)})  # noqa: S608
        return found

    def begin(self, event_id: str, kind: str) -> bool:
        """Record an attempt to post ``event_id``; True when an earlier attempt's fate is unknown."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "SELECT state, attempts FROM deliveries WHERE event_id = ?", (event_id,)).fetchone()
                if row is None:
                    self._db.execute(
                        "INSERT INTO deliveries (event_id, kind, state, attempts, first_try_at) "
                        "VALUES (?, ?, 'pending', 1, ?)", (event_id, kind, time.time()))
                    uncertain = False
                else:
                    self._db.execute("UPDATE deliveries SET attempts = attempts + 1 WHERE event_id = ?",
                                     (event_id,))
                    uncertain = row[0] == "pending"
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return uncertain

    def forget_attempt(self, event_id: str) -> None:
        """Discord answered with a definite failure: the attempt surely did not post anything."""
        with self._lock:
            self._db.execute("DELETE FROM deliveries WHERE event_id = ? AND state = 'pending'", (event_id,))

    def mark_posted(self, event_ids: list[str], kind: str, message_id: str | None) -> None:
        """Discord confirmed ``message_id`` for these events: one transaction, queue rows removed."""
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for event_id in event_ids:
                    self._db.execute(
                        "INSERT INTO deliveries (event_id, kind, state, message_id, attempts, first_try_at, "
                        "posted_at) VALUES (?, ?, 'posted', ?, 1, ?, ?) ON CONFLICT(event_id) DO UPDATE "
                        "SET state = 'posted', message_id = excluded.message_id, posted_at = excluded.posted_at",
                        (event_id, kind, message_id, now, now))
                    self._db.execute("DELETE FROM digest_queue WHERE event_id = ?", (event_id,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def message_id(self, event_id: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT message_id FROM deliveries WHERE event_id = ?", (event_id,)).fetchone()
        return row[0] if row else None

    # --- the digest queue ---------------------------------------------------------------------
    def enqueue(self, event_id: str, topic: str, body: bytes) -> bool:
        """Queue an event for the next digest; False if it is already queued or posted."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                done = self._db.execute("SELECT 1 FROM deliveries WHERE event_id = ? AND state = 'posted'",
                                        (event_id,)).fetchone()
                cur = None if done else self._db.execute(
                    "INSERT OR IGNORE INTO digest_queue (event_id, topic, body, enqueued_at) VALUES (?, ?, ?, ?)",
                    (event_id, topic, body, time.time()))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return bool(cur is not None and cur.rowcount == 1)

    def queued(self, limit: int) -> list[Queued]:
        with self._lock:
            rows = self._db.execute(
                "SELECT event_id, topic, body, enqueued_at, attempts FROM digest_queue "
                "ORDER BY enqueued_at, event_id LIMIT ?", (limit,)).fetchall()
        return [Queued(r[0], r[1], bytes(r[2]), r[3], r[4]) for r in rows]

    def queue_stats(self) -> tuple[int, float | None]:
        """(how many events wait, when the oldest was queued)."""
        with self._lock:
            count, oldest = self._db.execute("SELECT COUNT(*), MIN(enqueued_at) FROM digest_queue").fetchone()
        return int(count), oldest

    def note_digest_attempt(self, event_ids: list[str]) -> None:
        with self._lock:
            self._db.executemany("UPDATE digest_queue SET attempts = attempts + 1 WHERE event_id = ?",
                                 [(e,) for e in event_ids])

    def drop_queued(self, event_ids: list[str]) -> None:
        with self._lock:
            self._db.executemany("DELETE FROM digest_queue WHERE event_id = ?", [(e,) for e in event_ids])

    def clear_digest_attempts(self, event_ids: list[str]) -> None:
        with self._lock:
            self._db.executemany("UPDATE digest_queue SET attempts = 0 WHERE event_id = ?",
                                 [(e,) for e in event_ids])
