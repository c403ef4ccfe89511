"""Labels corrected after the fact: ``tiles.relabelled.v1`` (a fire reported later lies near a
fire-free tile), kept in ``<state>/gatekeeper/relabels.json`` so a restart and a replayed tile both
see them.

A retired tile is never scored (its label can no longer be trusted) and is taken out of the shadow
if it was already paired; a relabelled tile counts with its new label, in the shadow's pairs too.
A relabel wins over a retire (the image shows the fire); otherwise the first event for a tile stays
(the trainer's tile index applies the same rule).

A person's label (``labels.feedback.v1``), kept in ``<state>/gatekeeper/human_labels.json``, wins
over both: the tile is scored with it, retired or not. The latest feedback on a tile holds; the same
event delivered twice changes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

from emberwatch.common.atomic_files import atomic_write_text


class LabelCorrections:
    def __init__(self, root: Path) -> None:
        self.path = Path(root) / "relabels.json"
        self._by_tile: dict[str, dict] = json.loads(self.path.read_text()) if self.path.is_file() else {}
        self.human_path = Path(root) / "human_labels.json"
        self._human: dict[str, dict] = json.loads(self.human_path.read_text()) if self.human_path.is_file() else {}

    def record_human(self, tile_id: str, label: str, labelled_by: str, event_id: str, given_at: str) -> bool:
        """Remember a person's label (durably). True when it changed the tile's human label."""
        old = self._human.get(tile_id)
        if old is not None and (old["event_id"] == event_id or old["given_at"] > given_at):
            return False
        self._human[tile_id] = {"label": label, "labelled_by": labelled_by, "event_id": event_id,
                                "given_at": given_at}
        atomic_write_text(self.human_path, json.dumps(self._human))
        return True

    def human_label(self, tile_id: str) -> str | None:
        h = self._human.get(tile_id)
        return h["label"] if h is not None else None

    def record(self, tile_id: str, action: str, label: str | None, fire_key: str) -> bool:
        """Remember a correction (durably). True when it changed what the tile counts as."""
        return bool(self.record_many([(tile_id, action, label, fire_key)]))

    def record_many(self, corrections: list[tuple[str, str, str | None, str]]) -> list[int]:
        """Remember corrections ``(tile_id, action, label, fire_key)`` in order, with one durable
        write for all of them; the positions of those that changed what their tile counts as."""
        changed = []
        for i, (tile_id, action, label, fire_key) in enumerate(corrections):
            old = self._by_tile.get(tile_id)
            if old is not None and not (old["action"] == "retire" and action == "relabel"):
                continue
            self._by_tile[tile_id] = {"action": action, "label": label, "fire_key": fire_key}
            changed.append(i)
        if changed:
            atomic_write_text(self.path, json.dumps(self._by_tile))
        return changed

    def retired(self, tile_id: str) -> bool:
        """Left out of scoring: retired by a later fire, and no person has labelled it."""
        c = self._by_tile.get(tile_id)
        return c is not None and c["action"] == "retire" and tile_id not in self._human

    def label(self, tile_id: str, label: str) -> str:
        """The tile's label: a person's first, else after any relabel."""
        if (human := self.human_label(tile_id)) is not None:
            return human
        c = self._by_tile.get(tile_id)
        return c["label"] if c is not None and c["action"] == "relabel" else label

    def __len__(self) -> int:
        return len(self._by_tile)
