"""The core's requests answered with the next input: MLflow's record of a candidate, its artifacts
loaded and infra-validated in Triton, its test tiles scored; a live tile scored by champion and
challenger (or by the champion alone); a version readied for a promotion by hand or a rollback."""

from __future__ import annotations

import json
import logging
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

from emberwatch.common.safe_paths import child_path
from emberwatch.common.tile_store import TileUnavailable, read_tile
from emberwatch.common.triton_client import TritonError
from services.gatekeeper.core import effects as fx
from services.gatekeeper.core import inputs
from services.gatekeeper.core.shadow import LABEL_INDEX
from services.gatekeeper.core.state import GatekeeperState
from services.gatekeeper.live_scores import LiveScores
from services.gatekeeper.metrics import CHAMPION_TILES
from services.gatekeeper.record_quality import ModelQuality
from services.gatekeeper.registry import Registry
from services.gatekeeper.serving.control import ServingControl
from services.gatekeeper.serving.repository import head_versions_on_disk
from services.gatekeeper.settings import GatekeeperSettings
from services.gatekeeper.training_lineage import TrainingLineage
from services.gatekeeper.validate_candidate import ValidationReport, validate_in_triton

log = logging.getLogger(__name__)


class RequestAnswerer:
    def __init__(self, settings: GatekeeperSettings, serving: ServingControl, registry: Registry,
                 lineage: TrainingLineage, quality: ModelQuality, live_scores: LiveScores):
        self.settings = settings
        self.serving = serving
        self.registry = registry
        self.lineage = lineage
        self.quality = quality
        self.live_scores = live_scores

    def answer(self, r: fx.Request, state: GatekeeperState) -> inputs.Input | None:
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
        if int(r.target) not in head_versions_on_disk(self.serving.repo, self.serving.models):
            folder = self.registry.download_version_head(r.target, self.settings.gatekeeper_dir / "rollback" / r.target)
            self.serving.add_head(r.target, folder)
        return inputs.RollbackReady(r.command, r.issuer, r.target, r.current, self.registry.run_id_of(r.current),
                                    datetime.now(UTC))
