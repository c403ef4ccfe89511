"""What the console does with each event: keep the in-memory view, and tell the open pages.

The console reads every stream from the beginning (no consumer group: nothing is committed, each
start rebuilds the view). Events are facts with ids: one delivered twice changes nothing.
"""

from __future__ import annotations

import asyncio
import logging

from emberwatch.contracts import FireObserved, ModelCandidate, ModelDecision, TileReady
from emberwatch.contracts.events import LabelFeedback
from services.console.models import candidate_view, decision_view, fire_view, tile_view

log = logging.getLogger(__name__)


class ConsoleView:
    """Fires, tiles, feedback, candidates and decisions as the streams tell them."""

    def __init__(self) -> None:
        self.fires: dict[str, FireObserved] = {}  # fire_key -> latest change
        self.tiles: dict[str, TileReady] = {}  # tile_id -> tile
        self.tiles_by_fire: dict[str, list[str]] = {}
        self.feedback: dict[str, LabelFeedback] = {}  # tile_id -> latest feedback
        self.candidates: dict[str, ModelCandidate] = {}  # "model:version" -> candidate
        self.decisions: list[ModelDecision] = []
        self._seen: set[str] = set()
        self._listeners: set[asyncio.Queue[str]] = set()

    # --- the page's live updates ---------------------------------------------------------------
    def listen(self) -> asyncio.Queue[str]:
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=1000)
        self._listeners.add(queue)
        return queue

    def unlisten(self, queue: asyncio.Queue[str]) -> None:
        self._listeners.discard(queue)

    def _changed(self, kind: str) -> None:
        for queue in list(self._listeners):
            try:
                queue.put_nowait(kind)
            except asyncio.QueueFull:  # a page that stopped reading: it refetches on reconnect
                pass

    def _first(self, event_id: str) -> bool:
        if event_id in self._seen:
            return False
        self._seen.add(event_id)
        return True

    # --- the handlers ----------------------------------------------------------------------------
    async def on_fire(self, fire: FireObserved) -> None:
        if not self._first(fire.event_id):
            return
        current = self.fires.get(fire.fire_key)
        if current is None or fire.snapshot_at >= current.snapshot_at:
            self.fires[fire.fire_key] = fire
            self._changed("fires")

    async def on_tile(self, tile: TileReady) -> None:
        if not self._first(tile.event_id) or tile.tile_id in self.tiles:
            return
        self.tiles[tile.tile_id] = tile
        self.tiles_by_fire.setdefault(tile.fire_key, []).append(tile.tile_id)
        self._changed("tiles")

    async def on_feedback(self, feedback: LabelFeedback) -> None:
        if not self._first(feedback.event_id):
            return
        current = self.feedback.get(feedback.tile_id)
        if current is None or feedback.occurred_at >= current.occurred_at:
            self.feedback[feedback.tile_id] = feedback
            self._changed("tiles")

    async def on_candidate(self, candidate: ModelCandidate) -> None:
        if self._first(candidate.event_id):
            self.candidates[candidate.key()] = candidate
            self._changed("models")

    async def on_decision(self, decision: ModelDecision) -> None:
        if self._first(decision.event_id):
            self.decisions.append(decision)
            self._changed("models")

    # --- what the pages read ---------------------------------------------------------------------
    def active_fires(self) -> list[dict]:
        return [fire_view(f) for f in self.fires.values() if f.change != "out"]

    def fire_tiles(self, fire_key: str) -> list[dict]:
        """The fire's own tile(s) first, then its matched fire-free tiles."""
        tiles = [self.tiles[t] for t in self.tiles_by_fire.get(fire_key, [])]
        tiles.sort(key=lambda t: t.label != "wildfire")
        return [tile_view(t, self.feedback.get(t.tile_id)) for t in tiles]

    def models(self) -> dict:
        champion: str | None = None
        decided: set[str] = set()
        for d in self.decisions:
            if d.refused:
                continue
            decided.add(f"{d.model_name}:{d.candidate_version}")
            if d.decision == "promoted":
                champion = d.candidate_version
            elif d.decision == "rolled_back":
                champion = d.champion_version
        waiting = [c for k, c in self.candidates.items() if k not in decided]
        challenger = max(waiting, key=lambda c: c.occurred_at).version if waiting else None
        return {
            "champion": champion, "challenger": challenger,
            "candidates": [candidate_view(c) for c in self.candidates.values()],
            "decisions": [decision_view(d) for d in reversed(self.decisions)],
        }

    def decision_for(self, command_id: str) -> dict | None:
        for d in self.decisions:
            if d.command_id == command_id:
                return decision_view(d)
        return None
