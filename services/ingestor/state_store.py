"""The ingestor's memory across restarts: per feed the last good snapshot and its validators, and
the fires it tracks. One JSON file under ``EMBERWATCH_STATE_DIR/ingestor/``, replaced atomically."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from emberwatch.common.atomic_files import atomic_write_bytes
from services.ingestor.models import FireRecord

log = logging.getLogger(__name__)
STATE_VERSION = 1


@dataclass
class FeedSnapshot:
    """The last good snapshot of one feed."""

    fires: dict[str, FireRecord]
    snapshot_at: datetime
    fetched_at: datetime
    etag: str | None = None
    last_modified: str | None = None
    body_sha256: str | None = None


@dataclass
class IngestorState:
    feeds: dict[str, FeedSnapshot] = field(default_factory=dict)
    tracked: dict[str, FireRecord] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "feeds": {
                name: {"snapshot_at": s.snapshot_at.isoformat(), "fetched_at": s.fetched_at.isoformat(),
                       "etag": s.etag, "last_modified": s.last_modified,
                       "body_sha256": s.body_sha256, "fires": [r.to_dict() for r in s.fires.values()]}
                for name, s in self.feeds.items()
            },
            "tracked": [r.to_dict() for r in self.tracked.values()],
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> IngestorState:
        if doc.get("version") != STATE_VERSION:
            raise ValueError(f"unknown state version {doc.get('version')!r}")
        feeds = {}
        for name, s in doc.get("feeds", {}).items():
            recs = [FireRecord.from_dict(d) for d in s["fires"]]
            feeds[name] = FeedSnapshot(
                {r.fire_key: r for r in recs}, datetime.fromisoformat(s["snapshot_at"]),
                datetime.fromisoformat(s["fetched_at"]), s.get("etag"), s.get("last_modified"),
                s.get("body_sha256"))
        tracked = [FireRecord.from_dict(d) for d in doc.get("tracked", [])]
        return cls(feeds, {r.fire_key: r for r in tracked})


class StateStore:
    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / "ingestor" / "state.json"

    def load(self) -> IngestorState:
        if not self.path.exists():
            return IngestorState()
        try:
            return IngestorState.from_json(json.loads(self.path.read_text()))
        except (ValueError, KeyError, TypeError) as exc:
            # keep the unreadable file for a human, start clean (fires will be re-emitted as new)
            broken = self.path.with_suffix(".broken")
            os.replace(self.path, broken)
            log.error("ingestor state unreadable, starting afresh",
                      extra={"path": str(self.path), "moved_to": str(broken), "error": str(exc)})
            return IngestorState()

    def save(self, state: IngestorState) -> None:
        """Write to a temporary file in the same folder, fsync, then rename over the old one."""
        atomic_write_bytes(self.path, json.dumps(state.to_json(), separators=(",", ":")).encode())
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
