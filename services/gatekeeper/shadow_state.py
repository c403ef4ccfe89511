"""The challenger in shadow and its pairs so far, persisted so a restart loses nothing."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from emberwatch.common.atomic_files import atomic_write_text
from services.gatekeeper.models import Pair, Shadow

__all__ = ["Pair", "Shadow", "ShadowStore"]


class ShadowStore:
    """``<state>/gatekeeper/shadow.json``: at most one active shadow comparison."""

    def __init__(self, root: Path):
        self.path = root / "shadow.json"

    def load(self) -> Shadow | None:
        if not self.path.is_file():
            return None
        data = json.loads(self.path.read_text())
        if not data:
            return None
        pairs = [Pair(**p) for p in data.pop("pairs", [])]
        return Shadow(pairs=pairs, **data)

    def save(self, shadow: Shadow) -> None:
        atomic_write_text(self.path, json.dumps(asdict(shadow)))

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
