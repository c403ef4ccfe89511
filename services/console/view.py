"""What the console knows from the streams, kept in memory, and what the pages read of it.

The console reads every stream from the beginning (no consumer group: nothing is committed, each
start rebuilds the view). Events are facts with ids: one delivered twice changes nothing. Each change
is told to the parts that follow the view (the predictions) and to the open pages.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from emberwatch.contracts import FireObserved, ModelCandidate, ModelDecision, TileReady
from emberwatch.contracts.events import LabelFeedback
from emberwatch.contracts.products import MAPBOX, product_title
from services.console.imagery import sentinel2_grid
from services.console.models import candidate_view, decision_view, fire_view, tile_view


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
        self.observers: list[Callable[[str], None]] = []  # in-process parts told of each change (predictions)
        self.prediction_of: Callable[[str], dict | None] = lambda tile_id: None  # the predictions' (main.py)

    # --- the page's live updates ---------------------------------------------------------------
    def listen(self) -> asyncio.Queue[str]:
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=1000)
        self._listeners.add(queue)
        return queue

    def unlisten(self, queue: asyncio.Queue[str]) -> None:
        self._listeners.discard(queue)

    def _changed(self, kind: str) -> None:
        for observe in self.observers:
            observe(kind)
        self.notify(kind)

    def notify(self, kind: str) -> None:
        """Tell the open pages that ``kind`` changed (they refetch it)."""
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

    # --- what the streams tell ---------------------------------------------------------------------
    def add_fire(self, fire: FireObserved) -> None:
        if not self._first(fire.event_id):
            return
        current = self.fires.get(fire.fire_key)
        if current is None or fire.snapshot_at >= current.snapshot_at:
            self.fires[fire.fire_key] = fire
            self._changed("fires")

    def add_tile(self, tile: TileReady) -> None:
        if not self._first(tile.event_id) or tile.tile_id in self.tiles:
            return
        self.tiles[tile.tile_id] = tile
        self.tiles_by_fire.setdefault(tile.fire_key, []).append(tile.tile_id)
        self._changed("tiles")

    def add_feedback(self, feedback: LabelFeedback) -> None:
        if not self._first(feedback.event_id):
            return
        current = self.feedback.get(feedback.tile_id)
        if current is None or feedback.occurred_at >= current.occurred_at:
            self.feedback[feedback.tile_id] = feedback
            self._changed("tiles")

    def add_candidate(self, candidate: ModelCandidate) -> None:
        if self._first(candidate.event_id):
            self.candidates[candidate.key()] = candidate
            self._changed("models")

    def add_decision(self, decision: ModelDecision) -> None:
        if self._first(decision.event_id):
            self.decisions.append(decision)
            self._changed("models")

    # --- what the pages read ---------------------------------------------------------------------
    def active_fires(self) -> list[dict]:
        return [fire_view(f) | {"prediction": self.fire_prediction(f.fire_key)}
                for f in self.fires.values() if f.change != "out"]

    def fire_prediction(self, fire_key: str) -> dict | None:
        """The models on the fire's own tile, and whether they disagree on any of its tiles."""
        tiles = self.tiles_by_fire.get(fire_key, [])
        scored = {t: p for t in tiles if (p := self.prediction_of(t)) is not None and p["champion"] is not None}
        if not scored:
            return None
        own = next((scored[t] for t in tiles if t in scored and self.tiles[t].label == "wildfire"), None)
        return {"champion": own["champion"] if own else None, "challenger": own["challenger"] if own else None,
                "disagree": any(p["disagree"] for p in scored.values()),
                "tiles_scored": len(scored), "tiles": len(tiles)}

    def fire_tiles(self, fire_key: str) -> list[dict]:
        """The fire's own tile(s) first, then its matched fire-free tiles (and pre-fire controls), each
        with its imagery's dates counted from the fire's start."""
        tiles = [self.tiles[t] for t in self.tiles_by_fire.get(fire_key, [])]
        tiles.sort(key=lambda t: t.label != "wildfire")
        fire = self.fires.get(fire_key)
        start = fire.start_date if fire else None
        return [tile_view(t, self.feedback.get(t.tile_id), self.prediction_of(t.tile_id), start) for t in tiles]

    def fire_grid(self, fire_key: str) -> list[list[str | None]] | None:
        """The fire's Sentinel-2 tiles: rows before/after its start, columns true colour/SWIR."""
        return sentinel2_grid(self.tiles[t] for t in self.tiles_by_fire.get(fire_key, []))

    def roles(self, product: str = MAPBOX) -> dict[str, str | None]:
        """Champion, challenger and previous champion of one product's model line, as its decisions tell."""
        champions: list[str] = []  # the champions in turn; a rollback goes back down the list
        decided: set[str] = set()
        mine = (d for d in self.decisions if not d.refused and d.product == product)
        for d in sorted(mine, key=lambda d: d.occurred_at):
            decided.add(f"{d.model_name}:{d.candidate_version}")
            if d.decision == "promoted" and d.candidate_version is not None:
                champions.append(d.candidate_version)
            elif d.decision == "rolled_back" and d.champion_version is not None:
                while champions and champions[-1] != d.champion_version:
                    champions.pop()
                if not champions:
                    champions.append(d.champion_version)
        waiting = [c for k, c in self.candidates.items() if k not in decided and c.product == product]
        challenger = max(waiting, key=lambda c: c.occurred_at).version if waiting else None
        return {"champion": champions[-1] if champions else None, "challenger": challenger,
                "previous": champions[-2] if len(champions) > 1 else None}

    def candidate(self, version: str | None, product: str = MAPBOX) -> ModelCandidate | None:
        found = [c for c in self.candidates.values() if c.version == version and c.product == product]
        return max(found, key=lambda c: c.occurred_at) if found else None

    def products(self) -> list[str]:
        """The model lines the streams tell of: Mapbox first, then the others as named."""
        seen = {c.product for c in self.candidates.values()} | {d.product for d in self.decisions}
        return [MAPBOX, *sorted(seen - {MAPBOX})]

    def models(self) -> dict:
        """The Mapbox line's roles at the top (as before lines), and every line's roles in ``lines``."""
        return {
            **self.roles(),
            "lines": [{"product": p, "product_title": product_title(p), **self.roles(p)} for p in self.products()],
            "candidates": [candidate_view(c) for c in self.candidates.values()],
            "decisions": [decision_view(d) for d in reversed(self.decisions)],
        }

    def decision_for(self, command_id: str) -> dict | None:
        for d in self.decisions:
            if d.command_id == command_id:
                return decision_view(d)
        return None
