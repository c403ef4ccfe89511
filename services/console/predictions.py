"""The models' predictions on every Mapbox tile the console knows, asked of Triton's ``wildfire`` model
(the Mapbox line's; another product's tile is set aside with that reason).

Each tile is scored once by the champion, and by the challenger too while one is in shadow (one
request: ``versions=champion,challenger``; Triton answers with the versions it served, champion
first). A decision or a new candidate changes who is served: every tile is scored again, and until
then keeps the answer it had (the page says which versions gave it). Triton being down or serving
no champion yet is a status the pages show, retried with a growing pause; a tile Triton cannot read
is set aside with the reason, never retried in a loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from emberwatch.common.tile_store import TileMissing, TileRefused, TileUnavailable, read_tile
from emberwatch.common.triton_client import Scores, Triton, TritonError
from emberwatch.contracts import TileReady
from emberwatch.contracts.products import MAPBOX, product_title
from services.console.settings import ConsoleSettings

log = logging.getLogger(__name__)

THRESHOLD = 0.5  # P(wildfire) at which a model says "fire" (the gatekeeper's too)
ROLES = ("champion", "challenger")


@dataclass(frozen=True)
class TilePrediction:
    """What the served versions said of one tile: ``wildfire[i]`` is P(wildfire) of ``versions[i]``
    (the champion first, then the challenger if one was in shadow)."""

    versions: tuple[str, ...]
    wildfire: tuple[float, ...]
    generation: int

    def role(self, name: str) -> dict | None:
        i = ROLES.index(name)
        if i >= len(self.versions):
            return None
        p = self.wildfire[i]
        return {"version": self.versions[i], "wildfire": round(p, 4),
                "label": "wildfire" if p >= THRESHOLD else "nowildfire"}

    @property
    def disagree(self) -> bool:
        return len(self.wildfire) > 1 and (self.wildfire[0] >= THRESHOLD) != (self.wildfire[1] >= THRESHOLD)

    def view(self) -> dict:
        return {"champion": self.role("champion"), "challenger": self.role("challenger"),
                "disagree": self.disagree}


class TilePredictions:
    """Scores tiles in the background; ``get`` is what the pages show."""

    def __init__(self, settings: ConsoleSettings, tiles: Callable[[], Iterable[TileReady]],
                 changed: Callable[[str], None], triton: Triton | None = None) -> None:
        self.settings = settings
        self.enabled = settings.console_predictions
        self.triton = triton or Triton(settings.triton_url, timeout_s=settings.console_triton_timeout_s)
        self._tiles = tiles
        self._changed = changed
        self.by_tile: dict[str, TilePrediction] = {}
        self.unscorable: dict[str, str] = {}  # tile_id -> why Triton or the store could not score it
        self.generation = 0
        self.status = "scoring tiles through Triton" if self.enabled else \
            "predictions are off (EMBERWATCH_CONSOLE_PREDICTIONS=false)"
        self._wake = asyncio.Event()

    # --- what the view tells it ----------------------------------------------------------------
    def view_changed(self, kind: str) -> None:
        """New tiles are scored; a change of models has every tile scored again."""
        if kind == "tiles":
            self.tiles_added()
        elif kind == "models":
            self.models_changed()

    def tiles_added(self) -> None:
        self._wake.set()

    def models_changed(self) -> None:
        """A decision or a candidate: who is served may have changed, so every tile is asked again."""
        self.generation += 1
        self.unscorable.clear()
        self._wake.set()

    def get(self, tile_id: str) -> dict | None:
        """The tile's prediction, or why it has none (``{"problem": ...}``), or None (not scored yet)."""
        scored = self.by_tile.get(tile_id)
        if scored is not None:
            return scored.view()
        problem = self.unscorable.get(tile_id)
        return None if problem is None else {"champion": None, "challenger": None, "disagree": False,
                                             "problem": problem}

    # --- the loop ------------------------------------------------------------------------------
    def _todo(self) -> list[TileReady]:
        other = [t for t in self._tiles() if t.product != MAPBOX and t.tile_id not in self.unscorable]
        for t in other:  # the model asked here learned from Mapbox: its answer on another product's tile means nothing
            self.unscorable[t.tile_id] = f"a {product_title(t.product)} tile: the console asks the Mapbox model only"
        if other:
            self._changed("predictions")
        todo = [t for t in self._tiles() if t.tile_id not in self.unscorable
                and (t.tile_id not in self.by_tile or self.by_tile[t.tile_id].generation < self.generation)]
        todo.sort(key=lambda t: (t.tile_id in self.by_tile, t.label != "wildfire"))  # new ones, fire tiles first
        return todo

    async def run(self) -> None:
        """Until cancelled: score what is new or stale, a batch at a time; wait when nothing is."""
        if not self.enabled:
            return
        pause = 1.0
        while True:
            todo = self._todo()
            if not todo:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=60.0)
                continue
            try:
                await self._score(todo[: self.settings.console_predict_batch])
                pause = 1.0
            except Exception as exc:  # noqa: BLE001 - Triton down/restarting (any client error): wait, retry
                self.status = _triton_problem(exc)
                self._changed("predictions")
                log.info("predictions wait for Triton", extra={"status": self.status, "retry_in_s": pause})
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=pause)
                pause = min(pause * 2, 30.0)

    async def _score(self, batch: list[TileReady]) -> None:
        images: list[tuple[TileReady, bytes]] = []
        for tile in batch:
            try:
                images.append((tile, await asyncio.to_thread(read_tile, tile.uri, tile.tile_id,
                                                             settings=self.settings)))
            except TileMissing:
                self._set_aside(tile, "announced but not in the tile store")
            except TileRefused as exc:  # outside the store, too large, or not the tile's bytes
                self._set_aside(tile, f"refused by the tile store's reader ({exc.reason})")
            except TileUnavailable as exc:  # the store is down: try again later, as for Triton
                raise ConnectionError(f"the tile store cannot be read now ({type(exc).__name__})") from exc
        if not images:
            return
        generation = self.generation
        try:
            scored = [(images, await asyncio.to_thread(self._ask, [b for _, b in images]))]
        except TritonError as exc:
            if _is_serving_problem(exc):
                raise
            scored = await self._one_at_a_time(images)  # an image spoils the batch: find it
        for part, scores in scored:
            versions = tuple(scores.versions)
            for i, (tile, _) in enumerate(part):
                self.by_tile[tile.tile_id] = TilePrediction(
                    versions, tuple(float(scores.wildfire(v)[i]) for v in versions), generation)
            self.status = "champion " + versions[0] + (f", challenger {versions[1]} in shadow"
                                                       if len(versions) > 1 else "")
        self._changed("predictions")

    async def _one_at_a_time(self, images: list[tuple[TileReady, bytes]]) -> list[tuple[list, Scores]]:
        scored = []
        for one in images:
            try:
                scored.append(([one], await asyncio.to_thread(self._ask, [one[1]])))
            except TritonError as exc:
                if _is_serving_problem(exc):
                    raise
                self._set_aside(one[0], str(exc))
        return scored

    def _ask(self, images: list[bytes]) -> Scores:
        return self.triton.score_bytes(images, "champion,challenger")

    def _set_aside(self, tile: TileReady, why: str) -> None:
        self.unscorable[tile.tile_id] = why[:300]
        log.warning("tile not scored", extra={"tile_id": tile.tile_id, "reason": why[:300]})


def _is_serving_problem(exc: TritonError) -> bool:
    """Whether the failure is Triton's state (no champion, model not ready), not the image's."""
    text = str(exc).lower()
    return any(s in text for s in ("no champion", "not ready", "unavailable", "not found", "unknown model"))


def _triton_problem(exc: Exception) -> str:
    text = str(exc)
    if "no champion" in text.lower():
        return "no champion is served yet: predictions appear once the first model is promoted"
    if isinstance(exc, TritonError):
        return f"Triton refused: {text[:200]}"
    return f"Triton is not reachable ({type(exc).__name__}); retrying"
