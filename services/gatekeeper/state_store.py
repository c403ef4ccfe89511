"""The one store of the gatekeeper's state: ``<state>/gatekeeper/state.json``.

One load path and one save path for everything the core remembers (``core.state.GatekeeperState``):
written atomically (a crash leaves the old file or the new one), with a schema version a later
gatekeeper checks before it reads. A load reads the file again only when it changed on disk (another
process, or a test, may write it); a save writes only a state that differs from the one loaded.

The first load of a state directory written by an older gatekeeper (one JSON file per concern)
brings their content over, writes ``state.json`` and removes them. Per-version caches stay where they
are: the tiles each version was fitted on (``lineage/``, from MLflow), the reference scores of each
version (``references/``, for drift) and the live scores of the champion (``live_scores.sqlite3``).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from pathlib import Path

from emberwatch.common.atomic_files import atomic_write_text
from services.gatekeeper.core.state import SCHEMA_VERSION, GatekeeperState

LEGACY = ("shadow.json", "decisions.json", "validation_failures.json", "drift.json", "champions.json",
          "relabels.json", "human_labels.json", "commands.json", "seen_commands.json")


class StateStore:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.path = self.root / "state.json"
        self._state: GatekeeperState | None = None
        self._stamp: tuple[int, int, int] | None = None

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size

    def load(self) -> GatekeeperState:
        stamp = self._stat()
        if stamp is None:
            self._state, self._stamp = self._migrate(), self._stat()
            return self._state
        if stamp != self._stamp or self._state is None:
            data = json.loads(self.path.read_text())
            if data.get("schema_version") != SCHEMA_VERSION:
                raise ValueError(f"{self.path}: schema version {data.get('schema_version')!r}, this gatekeeper "
                                 f"reads {SCHEMA_VERSION}")
            self._state, self._stamp = GatekeeperState.from_dict(data["state"]), stamp
        return self._state

    def save(self, state: GatekeeperState) -> None:
        if state is self._state and self._stamp is not None and self._stamp == self._stat():
            return
        if state.shadow is not None and state.shadow.started_at is None:
            state = state.with_(shadow=replace(state.shadow, started_at=time.time()))
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, json.dumps({"schema_version": SCHEMA_VERSION, "state": state.to_dict()}))
        self._state, self._stamp = state, self._stat()

    def _migrate(self) -> GatekeeperState:
        """The content of an older gatekeeper's files (none: a fresh state, nothing written)."""
        found = {name: json.loads((self.root / name).read_text()) for name in LEGACY if (self.root / name).is_file()}
        if not found:
            return GatekeeperState()
        fields = {"shadow": "shadow.json", "decisions": "decisions.json", "drift_used": "drift.json",
                  "champions": "champions.json", "relabels": "relabels.json", "human_labels": "human_labels.json",
                  "answers": "commands.json", "seen_commands": "seen_commands.json",
                  "validation_failures": "validation_failures.json"}
        state = GatekeeperState.from_dict({field: found.get(name) for field, name in fields.items()})
        self.save(state)
        for name in found:
            (self.root / name).unlink(missing_ok=True)
        return self._state or state
