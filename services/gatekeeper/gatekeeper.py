"""The gatekeeper's adapter around its pure core: one input in, the effects carried out, state saved.

``Gatekeeper.run`` loads the state from the one store, steps the core (``core.machine.step``), carries
each effect out (``carry_effects``), saves the new state, and answers the core's request, if any, with
the next input (``answer_requests``). The events to publish
come back to the handlers, decisions first. An effect that fails leaves the state as it was saved
before the step (the message is retried). Everything runs under the state lock, one writer at a time;
handlers.py runs it off the event loop.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from emberwatch.common.logging import redact
from emberwatch.contracts.events import (
    LabelFeedback,
    ModelCandidate,
    ModelCommand,
    ModelDecision,
    TileReady,
    TileRelabelled,
)
from emberwatch.security.command_keys import TrustedKeys, trusted_dir
from emberwatch.security.command_signing import Unverified, verify_command
from services.gatekeeper.answer_requests import RequestAnswerer
from services.gatekeeper.carry_effects import EffectCarrier, Outbox
from services.gatekeeper.core import inputs
from services.gatekeeper.core.effects import Request
from services.gatekeeper.core.machine import step
from services.gatekeeper.core.state import GatekeeperState
from services.gatekeeper.live_scores import LiveScores
from services.gatekeeper.metrics import CHAMPION_TILES, GATE_MINIMUM, SHADOW_PAIRS, SHADOW_TILES
from services.gatekeeper.record_quality import ModelQuality
from services.gatekeeper.registry import Registry
from services.gatekeeper.serving.control import ServingControl, state_lock
from services.gatekeeper.settings import SERVICE, GatekeeperSettings
from services.gatekeeper.shadow_state import ShadowStore
from services.gatekeeper.state_store import StateStore
from services.gatekeeper.training_lineage import TrainingLineage

log = logging.getLogger(__name__)

__all__ = ["SERVICE", "Gatekeeper"]


class Corrections:
    """The labels corrected after the fact, as the store holds them now."""

    def __init__(self, store: StateStore):
        self.store = store

    def retired(self, tile_id: str) -> bool:
        return self.store.load().retired(tile_id)

    def label(self, tile_id: str, label: str) -> str:
        return self.store.load().label_for(tile_id, label)

    def __len__(self) -> int:
        return len(self.store.load().relabels)


class Gatekeeper:
    def __init__(self, settings: GatekeeperSettings, *, serving: ServingControl | None = None,
                 registry: Registry | None = None):
        self.settings = settings
        self.config = settings.core_config()
        self.serving = serving or ServingControl(settings)
        self.registry = registry or Registry(settings.mlflow_tracking_uri, settings.model_name)
        self.store = StateStore(settings.gatekeeper_dir)
        self.shadows = ShadowStore(self.store)
        self.corrections = Corrections(self.store)
        self.lineage = TrainingLineage(settings.gatekeeper_dir, self.registry)
        self.live_scores = LiveScores(settings.gatekeeper_dir)
        self.trusted = TrustedKeys(trusted_dir(settings))
        self.quality = ModelQuality(settings.gatekeeper_dir, settings.model_name,
                                    window=settings.gatekeeper_quality_live_window,
                                    min_live=settings.gatekeeper_quality_min_live_samples)
        minimums = self.config.gate
        GATE_MINIMUM.labels("all").set(minimums.min_pairs)
        GATE_MINIMUM.labels("wildfire").set(minimums.min_wildfire_pairs)
        GATE_MINIMUM.labels("nowildfire").set(minimums.min_fire_free_pairs)
        self.effects = EffectCarrier(self.serving, self.registry, self.quality, self.live_scores)
        self.requests = RequestAnswerer(settings, self.serving, self.registry, self.lineage, self.quality,
                                        self.live_scores)
        self._gauges(self.store.load())  # a restart: the shadow's gauges come back from its stored pairs

    # --- what the gatekeeper remembers -------------------------------------------------------
    @property
    def state(self) -> GatekeeperState:
        return self.store.load()

    def decision_for(self, model_name: str, version: str) -> ModelDecision | None:
        raw = self.state.decisions.get(f"{model_name}:{version}")
        return ModelDecision.model_validate(raw) if raw else None

    def drift_used(self) -> dict[str, float]:
        return dict(self.state.drift_used)

    def history(self) -> list[str]:
        """The champions so far, oldest first."""
        return list(self.state.champions)

    # --- one input, carried through ----------------------------------------------------------
    def run(self, first: inputs.Input) -> list:
        """Step the core from ``first`` until it asks for nothing more; the events to publish."""
        out = Outbox()
        state, pending = self.store.load(), first
        while pending is not None:
            state, effects = step(state, pending, self.config)
            request = effects.pop() if effects and isinstance(effects[-1], Request) else None
            for effect in effects:
                self.effects.carry(effect, out)
            self.store.save(state)
            self._gauges(state)
            pending = self.requests.answer(request, state) if request is not None else None
        return out.events()

    def _gauges(self, state: GatekeeperState) -> None:
        if state.shadow is None:
            self.quality.shadow_ended()
            SHADOW_PAIRS.labels(self.config.product).set(0)
        else:
            self.quality.shadow_state(state.shadow)
            SHADOW_PAIRS.labels(self.config.product).set(len(state.shadow.pairs))

    # --- one entry per kind of event ---------------------------------------------------------------
    def on_candidate(self, candidate: ModelCandidate) -> list:
        with state_lock(self.settings):
            return self.run(inputs.CandidateReceived(candidate, time.time()))

    def on_tile(self, tile: TileReady) -> list:
        with state_lock(self.settings):
            return self.run(inputs.TileArrived(tile, time.time()))

    def on_tiles(self, tiles: list[TileReady]) -> list:
        """``on_tile`` for a fetched batch, in order. What was already handled (a replay, a redelivered
        batch) is set aside with one look for the whole batch: tiles the champion has scored live
        between shadows, tiles already paired in the running shadow."""
        with state_lock(self.settings):
            shadow = self.state.shadow
            if shadow is not None:
                done = {p.tile_id for p in shadow.pairs}
                seen = SHADOW_TILES.labels("duplicate")
            elif (self.settings.gatekeeper_quality_score_champion
                  and (champion := self.serving.champion()) is not None):
                done = self.live_scores.scored(champion, [t.tile_id for t in tiles])
                seen = CHAMPION_TILES.labels("replayed")
            else:
                done = set()
        fresh = [t for t in tiles if t.tile_id not in done]
        if len(fresh) < len(tiles):
            seen.inc(len(tiles) - len(fresh))
        events: list = []
        for tile in fresh:
            events.extend(self.on_tile(tile))
        return events

    def on_relabels(self, events: list[TileRelabelled]) -> list:
        with state_lock(self.settings):
            return self.run(inputs.Relabelled(tuple(events), time.time()))

    def on_feedback(self, event: LabelFeedback) -> list:
        with state_lock(self.settings):
            return self.run(inputs.LabelGiven(event, time.time()))

    def on_tick(self) -> list:
        """The clock: a shadow past its time limit is decided even when no tile comes."""
        with state_lock(self.settings):
            return self.run(inputs.TimeTick(time.time()))

    def on_command(self, command: ModelCommand) -> list:
        """Carry out ``command`` if its signature shows who sent it; the decisions, its answer last."""
        with state_lock(self.settings):
            ours = command.model_name == self.settings.model_name
            issuer: str | None = None
            try:
                try:
                    issuer, unverified = verify_command(command, self.trusted), None
                except Unverified as exc:
                    unverified = (str(exc), exc.reason)
                champion = self.serving.champion() if ours else None
                return self.run(inputs.CommandReceived(command, issuer, unverified, champion, datetime.now(UTC)))
            except Exception as exc:  # noqa: BLE001 - the caller is told, instead of a silent DLQ
                log.exception("command failed", extra={"command": command.command, "command_id": command.event_id})
                error = redact(f"{type(exc).__name__}: {exc}")[:900]
                champion = self.serving.champion() if ours else None
                return self.run(inputs.CommandFailed(command, issuer, error, champion, datetime.now(UTC)))
