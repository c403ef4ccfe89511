"""The gatekeeper's adapter around its pure core: one input in, the effects carried out, state saved.

``Gatekeeper.run`` loads the state from the one store, steps the core (``core.machine.step``), carries
each effect out (Triton through ``serving``, MLflow through ``registry``, metrics, the live-score log),
saves the new state, and answers the core's request, if any, with the next input: MLflow's record of a
candidate, its infra validation and test scores, Triton's scores of a live tile. The events to publish
come back to the handlers, decisions first. An effect that fails leaves the state as it was saved
before the step (the message is retried). Everything runs under the state lock, one writer at a time;
handlers.py runs it off the event loop.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

from emberwatch.common.logging import redact
from emberwatch.common.safe_paths import child_path
from emberwatch.common.tile_store import TileUnavailable, read_tile
from emberwatch.common.triton_client import TritonError
from emberwatch.contracts.events import (
    Detection,
    LabelFeedback,
    ModelCandidate,
    ModelCommand,
    ModelDecision,
    TileReady,
    TileRelabelled,
)
from emberwatch.messaging.alerts import make_alert
from emberwatch.security.command_keys import TrustedKeys, trusted_dir
from emberwatch.security.command_signing import Unverified, verify_command
from services.gatekeeper.core import effects as fx
from services.gatekeeper.core import inputs
from services.gatekeeper.core.machine import candidate_warnings, step
from services.gatekeeper.core.shadow import LABEL_INDEX
from services.gatekeeper.core.state import GatekeeperState
from services.gatekeeper.live_scores import LiveScores
from services.gatekeeper.measure_latency import observe_fire_to_prediction
from services.gatekeeper.metrics import CHAMPION_TILES, COUNTERS, GATE_MINIMUM, SHADOW_PAIRS, SHADOW_TILES
from services.gatekeeper.record_quality import ModelQuality
from services.gatekeeper.registry import Registry
from services.gatekeeper.serving.control import ServingControl, state_lock
from services.gatekeeper.serving.repository import head_versions_on_disk
from services.gatekeeper.settings import SERVICE, GatekeeperSettings
from services.gatekeeper.shadow_state import ShadowStore
from services.gatekeeper.state_store import StateStore
from services.gatekeeper.training_lineage import TrainingLineage
from services.gatekeeper.validate_candidate import ValidationReport, validate_in_triton

log = logging.getLogger(__name__)

__all__ = ["SERVICE", "Gatekeeper", "candidate_warnings"]


class Outbox:
    """The events a run produced, in the order they are published: decisions, detections, alerts."""

    def __init__(self) -> None:
        self.decisions: list = []
        self.detections: list = []
        self.alerts: list = []

    def add(self, event: object) -> None:
        if isinstance(event, ModelDecision):
            self.decisions.append(event)
        elif isinstance(event, Detection):
            self.detections.append(event)
        else:
            self.alerts.append(event)

    def events(self) -> list:
        return self.decisions + self.detections + self.alerts


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
            request = effects.pop() if effects and isinstance(effects[-1], fx.Request) else None
            for effect in effects:
                self._carry(effect, out)
            self.store.save(state)
            self._gauges(state)
            pending = self._ask(request, state) if request is not None else None
        return out.events()

    def _gauges(self, state: GatekeeperState) -> None:
        if state.shadow is None:
            self.quality.shadow_ended()
            SHADOW_PAIRS.set(0)
        else:
            self.quality.shadow_state(state.shadow)
            SHADOW_PAIRS.set(len(state.shadow.pairs))

    def _carry(self, e: fx.Effect, out: Outbox) -> None:  # noqa: C901, PLR0912 - one branch per effect
        match e:
            case fx.Publish():
                out.add(e.event)
            case fx.RaiseAlert():
                out.add(make_alert(SERVICE, e.alert, e.severity, e.message,  # type: ignore[arg-type]
                                   details=e.details))
            case fx.SetChallenger():
                self.serving.set_challenger(e.version)
            case fx.UnloadModel():
                self.serving.drop_head(e.version)
            case fx.SwitchChampion():
                self.serving.switch_champion(e.version, previous=e.previous)
            case fx.RetireUnused():
                self.serving.retire_unused()
            case fx.SetAlias():
                self.registry.set_alias(e.alias, e.version)
            case fx.ClearAlias():
                self.registry.clear_alias(e.alias, only_if=e.only_if)
            case fx.RecordToMlflow():
                try:
                    self.registry.log_evidence(e.run_id, e.document, e.metrics, e.params, name=e.name)
                    if e.tag is not None:
                        self.registry.client.set_tag(e.run_id, "gatekeeper.decision", e.tag)
                except Exception as exc:  # noqa: BLE001 - the decision stands even if MLflow hiccups
                    log.warning("could not log evidence to MLflow", extra={"run_id": e.run_id, "error": str(exc)})
            case fx.Count():
                counter = COUNTERS[e.metric]
                (counter.labels(*e.labels) if e.labels else counter).inc(e.by)
            case fx.ObserveScores():
                self.quality.observe(e.version, list(e.labels), list(e.wildfire), e.source)
            case fx.SetReference():
                self.quality.set_reference(e.version, e.wildfire)
            case fx.ObservePairs():
                self.quality.shadow_pairs(e.shadow, e.pairs)
            case fx.RecordLiveScore():
                self.live_scores.record(e.version, e.tile_id, e.wildfire)
            case fx.ObserveLatency():
                observe_fire_to_prediction(e.tile)
            case fx.Guarded():
                try:
                    for inner in e.effects:
                        self._carry(inner, out)
                except Exception as exc:  # noqa: BLE001 - what came before stands
                    log.warning(e.warning, extra={**e.extra, "error": str(exc)})
            case fx.Log():
                getattr(log, e.level)(e.message, extra=e.extra)
            case _:
                raise TypeError(f"no adapter carries {type(e).__name__}")

    def _ask(self, r: fx.Request, state: GatekeeperState) -> inputs.Input | None:
        match r:
            case fx.VerifyCandidate():
                return self._verify(r)
            case fx.IntakeCandidate():
                return self._intake(r, state)
            case fx.ScorePair():
                return self._score_pair(r)
            case fx.ScoreChampion():
                return self._score_champion(r)
            case fx.PrepareManualPromotion():
                return self._prepare_promotion(r)
            case fx.PrepareRollback():
                return self._prepare_rollback(r)
        raise TypeError(f"no adapter answers {type(r).__name__}")

    # --- the requests --------------------------------------------------------------------------
    def _verify(self, r: fx.VerifyCandidate) -> inputs.Input:
        """MLflow's record of the version, not the event, says where its artifacts are: an event it does
        not bear out (UntrustedCandidate: to the DLQ) supersedes nothing and touches no file."""
        c = r.candidate
        run_id = self.registry.verified_run(c.version, c.run_id, c.artifact_uri)
        child_path(self.settings.gatekeeper_dir, "candidates", c.version)  # UnsafePath before anything changes
        return inputs.CandidateVerified(c, run_id, time.time())

    def _intake(self, r: fx.IntakeCandidate, state: GatekeeperState) -> inputs.Input:
        """The candidate's artifacts from MLflow, loaded next to the champion and checked on the known
        images; then its test tiles (none either model was fitted on) scored. A candidate that arrives
        while Triton restarts waits for it (bounded): an outage is no reason to reject it."""
        c, version = r.candidate, str(r.candidate.version)
        work = child_path(self.settings.gatekeeper_dir, "candidates", c.version)
        shutil.rmtree(work, ignore_errors=True)
        files = self.registry.download_candidate(r.run_id, work)
        self.lineage.remember(version, files.lineage)
        champion = self.serving.champion()
        if not self.serving.triton.live():
            self.serving.wait_until_serving(self.settings.gatekeeper_triton_wait_s)
        problems, report = validate_in_triton(self.serving, version, files, self.settings)
        if report is not None:
            self._log_validation(c.run_id, report)
        if problems:
            return inputs.CandidateInvalid(c, champion, "infra validation: " + "; ".join(problems),
                                           dict(report.__dict__) if report else None, time.time())
        fitted = self.lineage.excluded(version, *([champion] if champion else []))
        test = [t for t in self._test_tiles(files.test_split, state) if t[0] not in fitted]
        scored: tuple[inputs.TestScore, ...] = ()
        if test:
            versions = f"{champion},{version}" if champion else version
            scores = self.serving.triton.score_many([b for _, _, b in test], versions)
            mine = scores.wildfire(version)
            theirs = scores.wildfire(champion) if champion else [None] * len(test)
            scored = tuple(inputs.TestScore(tile_id, label, float(w), None if cw is None else float(cw))
                           for (tile_id, label, _), w, cw in zip(test, mine, theirs, strict=True))
        return inputs.CandidateValidated(c, champion, scored, time.time())

    def _test_tiles(self, path: Path | None, state: GatekeeperState) -> list[tuple[str, int, bytes]]:
        if path is None or not path.is_file():
            return []
        data = json.loads(path.read_text())
        records = data.get("tiles", []) if isinstance(data, dict) else data
        out = []
        for r in records:
            if state.retired(r["tile_id"]):
                continue  # a fire reported after the training lies near it: its label no longer holds
            try:
                out.append((r["tile_id"], LABEL_INDEX[state.label_for(r["tile_id"], r["label"])],
                            read_tile(r["uri"], r["tile_id"], timeout_s=self.settings.gatekeeper_tile_fetch_timeout_s,
                                      settings=self.settings)))
            except (KeyError, TileUnavailable) as exc:
                log.warning("test tile skipped", extra={"tile": r.get("tile_id"), "error": str(exc)})
        return out

    def _log_validation(self, run_id: str | None, report: ValidationReport) -> None:
        if not run_id:
            return
        try:
            self.registry.log_evidence(run_id, {"validation": report.__dict__}, report.metrics(), {},
                                       name="gatekeeper/validation.json")
        except Exception as exc:  # noqa: BLE001
            log.warning("could not log validation to MLflow", extra={"run_id": run_id, "error": str(exc)})

    def _score_pair(self, r: fx.ScorePair) -> inputs.Input:
        tile = r.tile
        if tile.tile_id in self.lineage.excluded(r.champion, r.challenger):
            return inputs.TileTrainedOn(tile, time.time())
        data = read_tile(tile.uri, tile.tile_id, timeout_s=self.settings.gatekeeper_tile_fetch_timeout_s,
                         settings=self.settings)
        # a restarting Triton is waited for (bounded), not an error: the pair must not be lost
        self.serving.wait_until_serving(self.settings.gatekeeper_triton_wait_s)
        scores = self.serving.triton.score_bytes([data], f"{r.champion},{r.challenger}")
        self.quality.retain([r.champion, r.challenger])
        return inputs.PairScored(tile, float(scores.wildfire(r.champion)[0]), float(scores.wildfire(r.challenger)[0]),
                                 time.time())

    def _score_champion(self, r: fx.ScoreChampion) -> inputs.Input | None:
        """Live quality of the champion between shadows. Monitoring only: a failure is counted and
        logged, never retried nor sent to the DLQ. A tile this version has scored (a replay, a
        redelivery) is set aside: counted and detected once (``live_scores``)."""
        tile = r.tile
        champion = self.serving.champion()
        self.quality.retain([champion])
        if champion is None:
            CHAMPION_TILES.labels("no_champion").inc()
            return None
        if self.live_scores.scored(champion, [tile.tile_id]):
            CHAMPION_TILES.labels("replayed").inc()
            return None
        if not self.serving.triton.live():  # a Triton restart: expected, the watchdog re-loads it
            CHAMPION_TILES.labels("failed").inc()
            log.info("Triton not reachable: the champion's live monitoring skips a tile", extra={"tile": tile.tile_id})
            return None
        try:
            data = read_tile(tile.uri, tile.tile_id, timeout_s=self.settings.gatekeeper_tile_fetch_timeout_s,
                             settings=self.settings)
            wildfire = float(self.serving.triton.score_bytes([data], champion).wildfire(champion)[0])
        except (TileUnavailable, TritonError, OSError, KeyError) as exc:
            CHAMPION_TILES.labels("failed").inc()
            log.warning("champion could not score a live tile", extra={"tile": tile.tile_id, "error": str(exc)})
            return None
        return inputs.ChampionScored(tile, champion, wildfire, time.time())

    def _prepare_promotion(self, r: fx.PrepareManualPromotion) -> inputs.Input:
        c, version, now = r.command, r.version, datetime.now(UTC)
        champion = self.serving.champion()
        run_id = self.registry.run_id_of(version)
        if run_id is None:
            return inputs.ManualPromotionRefused(c, r.issuer, f"{self.settings.model_name} has no registered "
                                                 f"version {version}", champion, now)
        work = child_path(self.settings.gatekeeper_dir, "manual", version)  # never outside the gatekeeper's state
        shutil.rmtree(work, ignore_errors=True)
        files = self.registry.download_candidate(run_id, work)
        problems, report = validate_in_triton(self.serving, version, files, self.settings)
        if problems:
            return inputs.ManualPromotionRefused(c, r.issuer, f"version {version} failed infra validation: "
                                                 + "; ".join(problems), champion, datetime.now(UTC))
        if report is not None:
            self._log_validation(run_id, report)
        return inputs.ManualPromotionReady(c, r.issuer, run_id, champion, datetime.now(UTC))

    def _prepare_rollback(self, r: fx.PrepareRollback) -> inputs.Input:
        if int(r.target) not in head_versions_on_disk(self.serving.repo):
            folder = self.registry.download_version_head(r.target, self.settings.gatekeeper_dir / "rollback" / r.target)
            self.serving.add_head(r.target, folder)
        return inputs.RollbackReady(r.command, r.issuer, r.target, r.current, self.registry.run_id_of(r.current),
                                    datetime.now(UTC))

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
