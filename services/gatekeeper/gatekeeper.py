"""The gatekeeper's decisions, synchronous and idempotent; handlers.py runs them off the event loop.

Candidate: download -> backbone + head placed and loaded -> infra validation -> (first model: the
absolute floor on the test split | otherwise: shadow on the test split, then live tiles) -> the
gate -> promoted or rejected. Every decision is logged to the candidate's MLflow run and returned
as a ``ModelDecision`` to publish.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

import numpy as np

from emberwatch.common.atomic_files import atomic_write_text
from emberwatch.common.model_registry import CHALLENGER, CHAMPION
from emberwatch.common.safe_paths import child_path
from emberwatch.common.tile_store import TileUnavailable, read_tile
from emberwatch.common.triton_client import TritonError
from emberwatch.contracts.events import (
    Detection,
    Evidence,
    LabelFeedback,
    ModelCandidate,
    ModelDecision,
    TileReady,
    TileRelabelled,
)
from emberwatch.messaging.alerts import make_alert
from emberwatch.ml import LABEL_INDEX
from services.gatekeeper.decide_promotion import GateResult, Look, decide_promotion, gate_look_due, passes_floor
from services.gatekeeper.detect_fire import detection_for
from services.gatekeeper.evidence import evidence_metrics, floor_evidence, gate_evidence, result_document
from services.gatekeeper.label_corrections import LabelCorrections
from services.gatekeeper.live_scores import LiveScores
from services.gatekeeper.measure_latency import observe_fire_to_prediction
from services.gatekeeper.metrics import (
    CHAMPION_TILES,
    DECISIONS,
    DETECTIONS,
    GATE_MINIMUM,
    HUMAN_LABELS,
    SHADOW_PAIRS,
    SHADOW_TILES,
)
from services.gatekeeper.record_quality import ModelQuality
from services.gatekeeper.registry import Registry
from services.gatekeeper.serving.control import ServingControl, state_lock
from services.gatekeeper.settings import SERVICE, GatekeeperSettings
from services.gatekeeper.shadow_state import Pair, Shadow, ShadowStore
from services.gatekeeper.training_lineage import TrainingLineage
from services.gatekeeper.validate_candidate import (
    ValidationReport,
    check_head_files,
    check_head_meta,
    validate_loaded,
)

log = logging.getLogger(__name__)

def candidate_warnings(c: ModelCandidate) -> list[str]:
    """What a person should know about a candidate before trusting its promotion."""
    return [c.leakage.warning] if c.leakage is not None and c.leakage.warning else []



class Gatekeeper:
    def __init__(self, settings: GatekeeperSettings, *, serving: ServingControl | None = None,
                 registry: Registry | None = None):
        self.settings = settings
        self.serving = serving or ServingControl(settings)
        self.registry = registry or Registry(settings.mlflow_tracking_uri, settings.model_name)
        self.shadows = ShadowStore(settings.gatekeeper_dir)
        self.decisions_path = settings.gatekeeper_dir / "decisions.json"
        self.failures_path = settings.gatekeeper_dir / "validation_failures.json"
        self.drift_path = settings.gatekeeper_dir / "drift.json"
        self.lineage = TrainingLineage(settings.gatekeeper_dir, self.registry)
        self.corrections = LabelCorrections(settings.gatekeeper_dir)
        self.live_scores = LiveScores(settings.gatekeeper_dir)
        self.detections: list[Detection] = []  # to publish after the decisions (handlers.py drains it)
        self.alerts: list = []  # PipelineAlert events  # to publish after the decisions (handlers.py drains it)
        self.quality = ModelQuality(settings.gatekeeper_dir, settings.model_name,
                                    window=settings.gatekeeper_quality_live_window,
                                    min_live=settings.gatekeeper_quality_min_live_samples)
        minimums = self.thresholds()
        GATE_MINIMUM.labels("all").set(minimums.min_pairs)
        GATE_MINIMUM.labels("wildfire").set(minimums.min_wildfire_pairs)
        GATE_MINIMUM.labels("nowildfire").set(minimums.min_fire_free_pairs)
        shadow = self.shadows.load()
        if shadow is not None:  # a restart: the shadow's gauges come back from its stored pairs
            self.quality.shadow_state(shadow)
            SHADOW_PAIRS.set(len(shadow.pairs))

    # --- bookkeeping -------------------------------------------------------------------------
    def _decisions(self) -> dict[str, dict]:
        return json.loads(self.decisions_path.read_text()) if self.decisions_path.is_file() else {}

    def _remember(self, decision: ModelDecision) -> ModelDecision:
        if decision.decision != "rolled_back":
            done = self._decisions()
            done[f"{decision.model_name}:{decision.candidate_version}"] = json.loads(decision.to_bytes())
            atomic_write_text(self.decisions_path, json.dumps(done))
        DECISIONS.labels(decision.decision).inc()
        return decision

    def drift_used(self) -> dict[str, float]:
        """What each class's drift budget has used up over the gate's promotions so far."""
        return json.loads(self.drift_path.read_text()) if self.drift_path.is_file() else {}

    def thresholds(self):
        return self.settings.thresholds(self.drift_used())

    def gate_so_far(self, shadow: Shadow) -> GateResult:
        """What the gate says of a shadow's pairs now (for a person's decision or a supersede)."""
        return decide_promotion(shadow.counts(), self.thresholds(), Look(alpha_spent=shadow.alpha_spent))

    def _spend_drift(self, result: GateResult) -> dict[str, float]:
        """A promotion uses up each class's worst plausible loss (its lower bound, when negative)."""
        used = self.drift_used()
        for c in (result.recall, result.specificity):
            low = c.delta.low
            used[c.metric] = round(used.get(c.metric, 0.0) + (max(0.0, -low) if low is not None else 0.0), 6)
        atomic_write_text(self.drift_path, json.dumps(used))
        return used

    def decision_for(self, model_name: str, version: str) -> ModelDecision | None:
        raw = self._decisions().get(f"{model_name}:{version}")
        return ModelDecision.model_validate(raw) if raw else None

    def _decide(self, *, candidate_version: str, champion_version: str | None, decision: str,
                reason: str, evidence: Evidence, run_id: str | None, result: GateResult | None = None,
                extra: dict | None = None, basis: str | None = None, requested_by: str | None = None,
                command_id: str | None = None, warnings: list[str] | None = None) -> ModelDecision:
        event = ModelDecision.create(
            producer=SERVICE, model_name=self.settings.model_name, candidate_version=str(candidate_version),
            champion_version=champion_version, decision=decision, evidence=evidence, reason=reason,
            run_id=run_id, basis=basis, requested_by=requested_by, command_id=command_id,
            warnings=list(warnings or []))
        if requested_by:
            extra = {**(extra or {}), "requested_by": requested_by, "command_id": command_id}
        if run_id:
            try:
                doc = result_document(result, {"decision": decision, "reason": reason,
                                               "evidence": json.loads(evidence.model_dump_json()),
                                               **(extra or {})})
                params = {f"gate_{k}": v for k, v in evidence.thresholds.items()}
                self.registry.log_evidence(run_id, doc, evidence_metrics(evidence), params,
                                           name=f"gatekeeper/{decision}.json")
                self.registry.client.set_tag(run_id, "gatekeeper.decision", decision)
            except Exception as exc:  # noqa: BLE001 - the decision stands even if MLflow hiccups
                log.warning("could not log evidence to MLflow", extra={"run_id": run_id, "error": str(exc)})
        log.info("decision", extra={"candidate": candidate_version, "decision": decision, "reason": reason})
        return self._remember(event)

    def _validation_outcome(self, version: str, problem: str | None) -> None:
        """Track consecutive infra-validation failures; every ``gatekeeper_validation_alert_after``-th in a row
        raises a critical alert with the reasons (a pass resets the streak)."""
        streak = json.loads(self.failures_path.read_text()) if self.failures_path.is_file() else []
        if problem is None:
            if streak:
                atomic_write_text(self.failures_path, "[]")
            return
        if any(f["version"] == version for f in streak):
            return  # the same candidate again (redelivered): already counted
        streak.append({"version": version, "reason": problem})
        atomic_write_text(self.failures_path, json.dumps(streak))
        n = self.settings.gatekeeper_validation_alert_after
        if n and len(streak) % n == 0:
            last = streak[-n:]
            self.alerts.append(make_alert(
                SERVICE, "validation_failing", "critical",
                f"{len(streak)} candidates in a row failed infra validation in Triton "
                f"(versions {', '.join(f['version'] for f in last)}); latest: {problem}",
                details={"versions": [f["version"] for f in last], "reasons": [f["reason"][:300] for f in last],
                         "consecutive": len(streak)}))

    def _log_validation(self, run_id: str | None, report: ValidationReport) -> None:
        if not run_id:
            return
        try:
            self.registry.log_evidence(run_id, {"validation": report.__dict__}, report.metrics(), {},
                                       name="gatekeeper/validation.json")
        except Exception as exc:  # noqa: BLE001
            log.warning("could not log validation to MLflow", extra={"run_id": run_id, "error": str(exc)})

    # --- a new candidate ---------------------------------------------------------------------
    def on_candidate(self, candidate: ModelCandidate) -> list[ModelDecision]:
        with state_lock(self.settings):
            return self._on_candidate(candidate)

    def _on_candidate(self, c: ModelCandidate) -> list[ModelDecision]:
        """Intake → validation in Triton → shadow (or the floor, for the first model) → the gate."""
        if c.model_name != self.settings.model_name:
            log.info("candidate for another model ignored", extra={"model_name": c.model_name})
            return []
        done = self.decision_for(c.model_name, c.version)
        if done is not None:
            return [done]  # redelivered: publish the same decision again (same event id)
        shadow = self.shadows.load()
        if shadow is not None and shadow.candidate_version == str(c.version):
            return self._evaluate(shadow)  # redelivered while in shadow: look at the gate again
        # MLflow's record of the version, not the event, says where its artifacts are: an event it does
        # not bear out (UntrustedCandidate: to the DLQ) supersedes nothing and touches no file
        run_id = self.registry.verified_run(c.version, c.run_id, c.artifact_uri)
        work = child_path(self.settings.gatekeeper_dir, "candidates", c.version)
        out = self._supersede(shadow, by=str(c.version)) if shadow is not None else []

        # 1. intake: the candidate's artifacts from MLflow (and what a person should know about it)
        warnings = candidate_warnings(c)
        if warnings:
            log.warning("candidate carries warnings", extra={"candidate": c.version, "warnings": warnings})
        shutil.rmtree(work, ignore_errors=True)
        files = self.registry.download_candidate(run_id, work)
        self.lineage.remember(str(c.version), files.lineage)
        champion = self.serving.champion()

        # 2. infra validation: loaded next to the champion, checked on the known images. A candidate
        #    that arrives while Triton restarts waits for it (bounded), as a shadow pair does: an
        #    outage is no reason to reject it, nor to dead-letter it after a few quick retries.
        if not self.serving.triton.live():
            self.serving.wait_until_serving(self.settings.gatekeeper_triton_wait_s)
        problem, report = self._validate_in_triton(str(c.version), files)
        self._validation_outcome(str(c.version), problem)
        if report is not None:
            self._log_validation(c.run_id, report)
        if problem is not None:
            self.registry.clear_alias(CHALLENGER, only_if=str(c.version))
            return out + [self._decide(
                candidate_version=c.version, champion_version=champion, decision="rejected", reason=problem,
                evidence=Evidence(), run_id=c.run_id, basis="validation",
                extra={"validation": report.__dict__} if report else {}, warnings=warnings)]

        # 3. the first model meets the floor; any later one goes into shadow beside the champion.
        #    No tile either model was fitted on is evaluated.
        fitted = self.lineage.excluded(str(c.version), *([champion] if champion else []))
        test = [t for t in self._test_tiles(files.test_split) if t[0] not in fitted]
        if champion is None:
            return out + self._first_model(c, test, warnings)
        shadow = self._start_shadow(c, champion, test, warnings)

        # 4. the gate (it may wait for more live pairs: on_tile looks again)
        return out + self._evaluate(shadow)

    def _validate_in_triton(self, version: str, files) -> tuple[str | None, ValidationReport | None]:
        """Backbone and head placed and loaded, then infra validation. Returns (problem, report):
        problem is None when the candidate is served correctly; a failed head is unloaded again."""
        try:
            head_meta = json.loads((files.triton_dir / "head.json").read_text())
        except (OSError, ValueError) as exc:
            return f"infra validation: unreadable head.json: {exc}", None
        problems = check_head_files(files.triton_dir)
        if problems:
            return "infra validation: " + "; ".join(problems), None
        problems = self.serving.ensure_backbone(head_meta, files.triton_dir / "backbone",
                                                files.triton_dir / "calibration.npz")
        problems += check_head_meta(head_meta, self.serving.backbone())
        if problems:
            return "infra validation: " + "; ".join(problems), None
        try:
            self.serving.add_head(version, files.triton_dir)
        except TritonError as exc:
            return f"infra validation: Triton could not load the head: {exc}", None
        s = self.settings
        report = validate_loaded(
            self.serving.triton, version, files.known_images, image_size=int(head_meta["image_size"]),
            tolerance=self.serving.validation_tolerance(), max_latency_ms=s.gatekeeper_validation_max_latency_ms,
            warmup=s.gatekeeper_validation_warmup_requests, timed=s.gatekeeper_validation_latency_requests)
        if not report.ok:
            self.serving.drop_head(version)
            return "infra validation: " + "; ".join(report.problems), report
        return None, report

    def _start_shadow(self, c: ModelCandidate, champion: str, test: list[tuple[str, int, bytes]],
                      warnings: list[str]) -> Shadow:
        """Pair the candidate with the champion on its held-out test tiles; live tiles follow."""
        version = str(c.version)
        shadow = Shadow(model_name=c.model_name, candidate_version=version, champion_version=champion,
                        run_id=c.run_id, warnings=warnings)
        if test:
            scores = self.serving.triton.score_many([b for _, _, b in test], f"{champion},{version}")
            for (tile_id, label, _), pa, pb in zip(test, scores.wildfire(champion), scores.wildfire(version)):
                shadow.add(Pair(tile_id, label, float(pa), float(pb), "test"))
            self.quality.set_reference(version, scores.wildfire(version))
        self.quality.shadow_pairs(shadow, shadow.pairs)
        self.serving.set_challenger(version)
        self.registry.set_alias(CHALLENGER, version)
        self.shadows.save(shadow)
        return shadow

    def _test_tiles(self, path: Path | None) -> list[tuple[str, int, bytes]]:
        if path is None or not path.is_file():
            return []
        data = json.loads(path.read_text())
        records = data.get("tiles", []) if isinstance(data, dict) else data
        out = []
        for r in records:
            if self.corrections.retired(r["tile_id"]):
                continue  # a fire reported after the training lies near it: its label no longer holds
            try:
                out.append((r["tile_id"], LABEL_INDEX[self.corrections.label(r["tile_id"], r["label"])],
                            read_tile(r["uri"], r["tile_id"], timeout_s=self.settings.gatekeeper_tile_fetch_timeout_s,
                                      settings=self.settings)))
            except (KeyError, TileUnavailable) as exc:
                log.warning("test tile skipped", extra={"tile": r.get("tile_id"), "error": str(exc)})
        return out

    def _first_model(self, c: ModelCandidate, test: list[tuple[str, int, bytes]],
                     warnings: list[str]) -> list[ModelDecision]:
        version = str(c.version)
        y = np.array([label for _, label, _ in test], dtype=np.int64)
        pred = np.zeros(0, dtype=np.int64)
        if test:
            wildfire = self.serving.triton.score_many([b for _, _, b in test], version).wildfire(version)
            self.quality.set_reference(version, wildfire)
            self.quality.observe(version, y.tolist(), wildfire.tolist(), "test")
            pred = (wildfire >= 0.5).astype(np.int64)
        s = self.settings
        floor = passes_floor(y, pred, floor_recall=s.gatekeeper_floor_recall,
                             floor_specificity=s.gatekeeper_floor_specificity,
                             min_per_class=s.gatekeeper_floor_min_per_class, alpha=s.gatekeeper_alpha)
        ok, why = floor.ok, floor.reason
        evidence = floor_evidence(floor, {"floor_recall": s.gatekeeper_floor_recall,
                                          "floor_specificity": s.gatekeeper_floor_specificity,
                                          "floor_min_per_class": s.gatekeeper_floor_min_per_class,
                                          "floor_confidence": 1 - s.gatekeeper_alpha})
        if not ok:
            self.serving.drop_head(version)
            self.registry.clear_alias(CHALLENGER, only_if=version)
            return [self._decide(candidate_version=version, champion_version=None, decision="rejected",
                                 reason=f"first model below the floor: {why}", evidence=evidence,
                                 run_id=c.run_id, basis="floor", warnings=warnings)]
        return [self._promote(version, evidence=evidence, run_id=c.run_id,
                              reason=f"first model: validated and {why}", basis="floor", warnings=warnings)]

    # --- live shadow traffic -----------------------------------------------------------------
    def on_tile(self, tile: TileReady) -> list[ModelDecision]:
        with state_lock(self.settings):
            shadow = self.shadows.load()
            if shadow is None:
                SHADOW_TILES.labels("no_shadow").inc()
                self.quality.shadow_ended()
                self._score_champion(tile)
                return []
            if any(p.tile_id == tile.tile_id for p in shadow.pairs):
                SHADOW_TILES.labels("duplicate").inc()
                return []
            if self.corrections.retired(tile.tile_id):
                SHADOW_TILES.labels("retired").inc()  # a later fire lies near it: label untrusted
                return []
            if tile.tile_id in self.lineage.excluded(shadow.champion_version, shadow.candidate_version):
                SHADOW_TILES.labels("trained_on").inc()  # a replayed or lagging training tile
                return self._evaluate(shadow) if self._time_is_up(shadow) else []
            data = read_tile(tile.uri, tile.tile_id, timeout_s=self.settings.gatekeeper_tile_fetch_timeout_s,
                             settings=self.settings)
            # a restarting Triton is waited for (bounded), not an error: the pair must not be lost
            self.serving.wait_until_serving(self.settings.gatekeeper_triton_wait_s)
            versions = f"{shadow.champion_version},{shadow.candidate_version}"
            scores = self.serving.triton.score_bytes([data], versions)
            label = self.corrections.label(tile.tile_id, tile.label)
            pair = Pair(tile.tile_id, LABEL_INDEX[label],
                        float(scores.wildfire(shadow.champion_version)[0]),
                        float(scores.wildfire(shadow.candidate_version)[0]), "live")
            shadow.add(pair)
            self._detect(tile, label, shadow.champion_version, pair.champion_wildfire,
                         shadow.candidate_version, pair.challenger_wildfire)
            observe_fire_to_prediction(tile)
            self.shadows.save(shadow)
            self.quality.retain([shadow.champion_version, shadow.candidate_version])
            self.quality.shadow_pairs(shadow, [pair])
            SHADOW_TILES.labels("scored").inc()
            SHADOW_PAIRS.set(len(shadow.pairs))
            if self._time_is_up(shadow) or gate_look_due(
                    len(shadow.pairs), shadow.last_checked_n, shadow.last_look_n, self.thresholds(),
                    self.settings.gatekeeper_check_every):
                return self._evaluate(shadow)
            return []

    def on_tiles(self, tiles: list[TileReady]) -> list[ModelDecision]:
        """``on_tile`` for a fetched batch, in order. What was already handled (a replay, a
        redelivered batch) is set aside with one look for the whole batch: tiles the champion has
        scored live between shadows, tiles already paired in the running shadow. The others go
        through ``on_tile`` one by one (each waits on inference)."""
        with state_lock(self.settings):
            shadow = self.shadows.load()
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
        decisions: list[ModelDecision] = []
        for tile in fresh:
            decisions.extend(self.on_tile(tile))
        return decisions

    def on_relabel(self, event: TileRelabelled) -> None:
        """A fire reported later invalidates a fire-free tile's label: remembered for every later
        tile and test split, and applied to the shadow's pairs now (the next look uses them)."""
        self.on_relabels([event])

    def on_relabels(self, events: list[TileRelabelled]) -> None:
        """``on_relabel`` for a batch, in order, with one durable write of the corrections and at
        most one of the shadow (a burst of relabels is one write per batch, not one per tile)."""
        with state_lock(self.settings):
            changed = [events[i] for i in self.corrections.record_many(
                [(e.tile_id, e.action, e.label, e.fire_key) for e in events])]
            if not changed:
                return
            for event in changed:  # each correction is on Kafka already: one info line per batch
                log.debug("tile label corrected", extra={"tile_id": event.tile_id, "action": event.action,
                                                         "fire_key": event.fire_key})
            log.info("tile labels corrected", extra={
                "tiles": len(changed), "retired": sum(e.action == "retire" for e in changed),
                "relabelled": sum(e.action == "relabel" for e in changed), "first_tile_id": changed[0].tile_id})
            shadow = self.shadows.load()
            if shadow is None:
                return
            moved = False
            for event in changed:
                moved |= (shadow.drop(event.tile_id) if event.action == "retire"
                          else shadow.relabel(event.tile_id, LABEL_INDEX[event.label or "wildfire"]))
            if moved:
                self.shadows.save(shadow)
                self.quality.shadow_state(shadow)
                SHADOW_PAIRS.set(len(shadow.pairs))

    def on_feedback(self, event: LabelFeedback) -> None:
        """A person's label on a tile: every later score of it uses that label, and the shadow's
        pair for it, if any, is counted with it from the next look on."""
        with state_lock(self.settings):
            if not self.corrections.record_human(event.tile_id, event.label, event.labelled_by, event.event_id,
                                                 event.occurred_at.isoformat()):
                return
            HUMAN_LABELS.labels(event.label).inc()
            log.info("a person labelled a tile", extra={"tile_id": event.tile_id, "label": event.label,
                                                        "labelled_by": event.labelled_by})
            shadow = self.shadows.load()
            if shadow is not None and shadow.relabel(event.tile_id, LABEL_INDEX[event.label]):
                self.shadows.save(shadow)
                self.quality.shadow_state(shadow)

    def _time_is_up(self, shadow: Shadow) -> bool:
        return time.time() - shadow.started_at >= self.settings.gatekeeper_max_shadow_hours * 3600

    def _score_champion(self, tile: TileReady) -> None:
        """Live quality of the champion between shadows. Monitoring only: a failure is counted and
        logged, never retried nor sent to the DLQ. A tile this version has scored (a replay, a
        redelivery) is set aside: counted and detected once (``live_scores``)."""
        if not self.settings.gatekeeper_quality_score_champion:
            CHAMPION_TILES.labels("disabled").inc()
            return
        if self.corrections.retired(tile.tile_id):
            CHAMPION_TILES.labels("retired").inc()
            return
        champion = self.serving.champion()
        self.quality.retain([champion])
        if champion is None:
            CHAMPION_TILES.labels("no_champion").inc()
            return
        if self.live_scores.scored(champion, [tile.tile_id]):  # a replay: counted and detected once
            CHAMPION_TILES.labels("replayed").inc()
            return
        if not self.serving.triton.live():  # a Triton restart: expected, the watchdog re-loads it
            CHAMPION_TILES.labels("failed").inc()
            log.info("Triton not reachable: the champion's live monitoring skips a tile",
                     extra={"tile": tile.tile_id})
            return
        try:
            data = read_tile(tile.uri, tile.tile_id, timeout_s=self.settings.gatekeeper_tile_fetch_timeout_s,
                             settings=self.settings)
            wildfire = float(self.serving.triton.score_bytes([data], champion).wildfire(champion)[0])
        except (TileUnavailable, TritonError, OSError, KeyError) as exc:
            CHAMPION_TILES.labels("failed").inc()
            log.warning("champion could not score a live tile", extra={"tile": tile.tile_id, "error": str(exc)})
            return
        label = self.corrections.label(tile.tile_id, tile.label)
        self.quality.observe(champion, [LABEL_INDEX[label]], [wildfire], "live")
        self._detect(tile, label, champion, wildfire)
        self.live_scores.record(champion, tile.tile_id, wildfire)
        CHAMPION_TILES.labels("scored").inc()
        observe_fire_to_prediction(tile)

    def _detect(self, tile: TileReady, label: str, champion: str, wildfire: float,
                challenger: str | None = None, challenger_wildfire: float | None = None) -> None:
        detection = detection_for(tile, label=label, model_name=self.settings.model_name,  # type: ignore[arg-type]
                                  champion_version=champion, wildfire_probability=wildfire,
                                  threshold=self.settings.gatekeeper_detection_threshold, producer=SERVICE,
                                  challenger_version=challenger, challenger_probability=challenger_wildfire)
        if detection is not None:
            DETECTIONS.inc()
            self.detections.append(detection)

    # --- the gate ----------------------------------------------------------------------------
    def _evaluate(self, shadow: Shadow) -> list[ModelDecision]:
        """One look of the sequential gate; its alpha spent is kept with the shadow."""
        thresholds = self.thresholds()
        final = len(shadow.pairs) >= thresholds.max_pairs or self._time_is_up(shadow)
        result = decide_promotion(shadow.counts(), thresholds, Look(alpha_spent=shadow.alpha_spent, final=final))
        shadow.last_checked_n = len(shadow.pairs)
        if result.looked:
            shadow.alpha_spent, shadow.last_look_n = result.alpha_spent, len(shadow.pairs)
        SHADOW_PAIRS.set(len(shadow.pairs))
        evidence = gate_evidence(result)
        extra = {"pairs_by_source": shadow.n_by_source(), "drift_used": self.drift_used()}
        if result.verdict == "wait":
            self.shadows.save(shadow)
            log.info("shadow continues", extra={"candidate": shadow.candidate_version, "n": result.n,
                                                "rule": result.rule, "reason": result.reason})
            return []
        if result.verdict == "promote":
            self.shadows.clear()
            self.quality.shadow_ended()
            SHADOW_PAIRS.set(0)
            extra["drift_used"] = self._spend_drift(result)
            return [self._promote(shadow.candidate_version, evidence=evidence, run_id=shadow.run_id,
                                  reason=result.reason, result=result, extra=extra, basis="gate",
                                  warnings=shadow.warnings)]
        basis = "inconclusive" if result.rule == "inconclusive" else "gate"
        return self._end_shadow(shadow, "rejected", result.reason, evidence, result, extra, basis=basis)

    def _end_shadow(self, shadow: Shadow, decision: str, reason: str, evidence: Evidence,
                    result: GateResult | None, extra: dict, basis: str | None = None,
                    requested_by: str | None = None, command_id: str | None = None) -> list[ModelDecision]:
        self.serving.set_challenger(None)
        self.serving.drop_head(shadow.candidate_version)
        self.registry.clear_alias(CHALLENGER, only_if=shadow.candidate_version)
        self.shadows.clear()
        self.quality.shadow_ended()
        SHADOW_PAIRS.set(0)
        return [self._decide(candidate_version=shadow.candidate_version,
                             champion_version=shadow.champion_version, decision=decision, reason=reason,
                             evidence=evidence, run_id=shadow.run_id, result=result, extra=extra,
                             basis=basis, requested_by=requested_by, command_id=command_id,
                             warnings=shadow.warnings)]

    def _supersede(self, shadow: Shadow, by: str) -> list[ModelDecision]:
        result = self.gate_so_far(shadow)
        return self._end_shadow(shadow, "rejected", f"superseded by version {by} before the gate "
                                f"decided ({result.reason})", gate_evidence(result), result,
                                {"pairs_by_source": shadow.n_by_source()}, basis="superseded")

    # --- promotion ---------------------------------------------------------------------------
    def _promote(self, version: str, *, evidence: Evidence, run_id: str | None, reason: str,
                 result: GateResult | None = None, extra: dict | None = None,
                 basis: str | None = None, requested_by: str | None = None,
                 command_id: str | None = None, warnings: list[str] | None = None) -> ModelDecision:
        old = self.serving.champion()
        history = [v for v in self.serving.history() if v != str(version)] + [str(version)]
        self.serving.switch_champion(str(version), previous=old, history=history)
        self.registry.set_alias(CHAMPION, str(version))
        self.registry.clear_alias(CHALLENGER, only_if=str(version))
        self.serving.retire_unused()
        return self._decide(candidate_version=version, champion_version=old, decision="promoted",
                            reason=reason, evidence=evidence, run_id=run_id, result=result, extra=extra,
                            basis=basis, requested_by=requested_by, command_id=command_id, warnings=warnings)
