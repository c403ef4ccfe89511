"""Operator commands (``models.commands.v1``), carried out by the gatekeeper alone.

* ``promote VERSION`` — the version is placed in Triton's repository, loaded and infra-validated,
  then it becomes the champion with the same zero-downtime switch as a promotion on evidence (no
  shadow, no gate). Promoting the challenger in shadow is an ``approve``.
* ``rollback`` — the previous champion serves again at once (it stays loaded after every promotion;
  if it was unloaded meanwhile it is fetched from MLflow and loaded first).
* ``approve`` — the challenger in shadow is promoted now, on the evidence gathered so far.
* ``reject`` — the challenger's shadow ends; it is rejected.

Only a command the gatekeeper can verify is carried out (docs/security.md): signed by a trusted
issuer's Ed25519 key over its whole content, the issuer allowed to speak for its ``requested_by``,
with an ``expires_at`` not yet past and no further ahead than EMBERWATCH_GATEKEEPER_COMMAND_MAX_AGE_S,
and an ``event_id`` never seen before (``seen_commands.json``, kept until each expiry). Any other is
refused and counted by reason (``emberwatch_gatekeeper_command_refusals_total``); its answer names
no requester, since none was shown.

Each command is answered by one decision that carries its ``command_id``, ``requested_by`` and
``issuer``. A command that cannot be carried out (another model, unknown version, nothing to roll back to, failed
validation, expired, an error on the way) is answered too: decision ``rejected`` with ``refused``
set and the reason, nothing changed. A challenger whose shadow ends because the champion changed
under it is rejected in a decision of its own (``requested_by`` set, no ``command_id``: it is not the
answer). A command delivered again (a replay, or Kafka's redelivery) is refused as replayed, with
the first answer's outcome in its reason: it is never redone.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from emberwatch.common.atomic_files import atomic_write_text
from emberwatch.common.logging import redact
from emberwatch.common.model_registry import CHAMPION
from emberwatch.common.safe_paths import child_path
from emberwatch.common.triton_client import TritonError
from emberwatch.contracts.events import Evidence, ModelCommand, ModelDecision
from emberwatch.security.command_keys import TrustedKeys, trusted_dir
from emberwatch.security.command_signing import Unverified, verify_command
from services.gatekeeper.evidence import gate_evidence
from services.gatekeeper.gatekeeper import SERVICE, Gatekeeper
from services.gatekeeper.metrics import COMMAND_REFUSALS, COMMANDS, SHADOW_PAIRS
from services.gatekeeper.models import Shadow
from services.gatekeeper.serving.control import state_lock
from services.gatekeeper.serving.repository import head_versions_on_disk
from services.gatekeeper.validate_candidate import check_head_files, check_head_meta, validate_loaded

log = logging.getLogger(__name__)


class Refused(Exception):
    """The command cannot be carried out; nothing was changed. The message says why; ``reason`` is a
    short label for the refusals' counter (``not_possible``: verified, but it cannot be done)."""

    def __init__(self, message: str, reason: str = "not_possible"):
        super().__init__(message)
        self.reason = reason


class AnsweredCommands:
    """``<state>/gatekeeper/commands.json``: the answer to each recent command, by command id."""

    def __init__(self, root: Path, keep: int = 1000):
        self.path = root / "commands.json"
        self.keep = keep

    def _load(self) -> dict[str, dict]:
        return json.loads(self.path.read_text()) if self.path.is_file() else {}

    def get(self, command_id: str) -> ModelDecision | None:
        raw = self._load().get(command_id)
        return ModelDecision.model_validate(raw) if raw else None

    def add(self, answer: ModelDecision) -> None:
        answers = self._load()
        answers[str(answer.command_id)] = json.loads(answer.to_bytes())
        recent = dict(list(answers.items())[-self.keep:])  # insertion order: oldest first
        atomic_write_text(self.path, json.dumps(recent))


class SeenCommands:
    """``<state>/gatekeeper/seen_commands.json``: the event id of every verified command until its
    deadline has passed (after it, the command is refused as expired anyway), so none is carried out
    twice."""

    def __init__(self, root: Path):
        self.path = root / "seen_commands.json"

    def first_time(self, event_id: str, deadline: datetime, now: datetime) -> bool:
        """Record ``event_id``; False when it was recorded before (a replay)."""
        seen = json.loads(self.path.read_text()) if self.path.is_file() else {}
        if event_id in seen:
            return False
        seen = {k: v for k, v in seen.items() if datetime.fromisoformat(v) >= now}
        seen[event_id] = deadline.isoformat()
        atomic_write_text(self.path, json.dumps(seen))
        return True


class OperatorCommands:
    """The gatekeeper's handling of ``ModelCommand``s, on the service's own ``Gatekeeper``."""

    def __init__(self, gatekeeper: Gatekeeper, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.gk = gatekeeper
        self.settings = gatekeeper.settings
        self.answers = AnsweredCommands(self.settings.gatekeeper_dir)
        self.seen = SeenCommands(self.settings.gatekeeper_dir)
        self.trusted = TrustedKeys(trusted_dir(self.settings))
        self.clock = clock

    def on_command(self, command: ModelCommand) -> list[ModelDecision]:
        """Carry out ``command``; the decisions to publish, its answer last."""
        with state_lock(self.settings):
            run = {"promote": self._promote, "rollback": self._rollback,
                   "approve": self._approve, "reject": self._reject}[command.command]
            authentic = new = False
            try:
                issuer = self._authenticate(command)
                authentic = True
                self._in_time_and_new(command)
                new = True
                self._check(command)
                decisions, outcome = run(command), "done"
                decisions = [d.model_copy(update={"issuer": issuer}) if d.requested_by else d for d in decisions]
            except Refused as exc:
                decisions, outcome = [self._refusal(command, str(exc), authentic=authentic)], "refused"
                COMMAND_REFUSALS.labels(exc.reason).inc()
            except Exception as exc:  # noqa: BLE001 - the caller is told, instead of a silent DLQ
                log.exception("command failed", extra={"command": command.command,
                                                       "command_id": command.event_id})
                error = redact(f"{type(exc).__name__}: {exc}")[:900]
                decisions, outcome = [self._refusal(command, f"it failed: {error}", authentic=authentic)], "failed"
            if new:  # the first answer to a verified command (a replay's never replaces it)
                self.answers.add(decisions[-1])
            COMMANDS.labels(command.command, outcome).inc()
            log.info("command answered", extra={"command": command.command, "outcome": outcome,
                                                "requested_by": decisions[-1].requested_by,
                                                "issuer": decisions[-1].issuer, "reason": decisions[-1].reason})
            return decisions

    # --- checks and answers ------------------------------------------------------------------
    def _authenticate(self, c: ModelCommand) -> str:
        """The command's issuer once its signature shows it is who it says; else Refused."""
        try:
            return verify_command(c, self.trusted)
        except Unverified as exc:
            raise Refused(f"{exc}; nothing was done", exc.reason) from None

    def _in_time_and_new(self, c: ModelCommand) -> None:
        """Refused unless the command holds now, for a bounded time, and was never received before."""
        max_age = timedelta(seconds=self.settings.gatekeeper_command_max_age_s)
        now = self.clock()
        if c.expires_at is None:
            raise Refused("it has no expires_at (a signed command must say until when it holds); nothing was done",
                          "expired")
        if c.expires_at > now + max_age:
            raise Refused(f"it would hold until {c.expires_at.isoformat(timespec='seconds')}, further ahead than "
                          f"this gatekeeper accepts ({max_age.total_seconds():g} s); nothing was done", "expired")
        deadline = min(c.occurred_at + max_age, c.expires_at)
        if now > deadline:
            raise Refused(f"the command expired at {deadline.isoformat(timespec='seconds')} "
                          "(its caller had stopped waiting); nothing was done", "expired")
        if not self.seen.first_time(c.event_id, deadline, now):
            first = self.answers.get(c.event_id)
            outcome = f" (its first answer: {first.decision}{', refused' if first.refused else ''})" if first else ""
            raise Refused(f"it was replayed: command {c.event_id} was received before{outcome}; nothing was done "
                          "again", "replayed")

    def _check(self, c: ModelCommand) -> None:
        if c.model_name != self.settings.model_name:
            raise Refused(f"this gatekeeper serves {self.settings.model_name}, not {c.model_name}")

    def _refusal(self, c: ModelCommand, why: str, *, authentic: bool) -> ModelDecision:
        """The answer to a command not carried out. An unverified one names no requester or issuer: they
        are only what the command claims."""
        ours = c.model_name == self.settings.model_name
        champion = self.gk.serving.champion() if ours else None
        shadow = self.gk.shadows.load() if ours else None
        subject = c.version or (champion if c.command == "rollback" else None) or \
            (shadow.candidate_version if shadow is not None else None) or ""
        return ModelDecision.create(
            producer=SERVICE, model_name=c.model_name, candidate_version=subject, champion_version=champion,
            decision="rejected", reason=f"{c.command} refused: {why}", basis="operator",
            requested_by=c.requested_by if authentic else None, issuer=c.issuer if authentic else None,
            command_id=c.event_id, refused=True)

    @staticmethod
    def _why(text: str, c: ModelCommand) -> str:
        return f"{text}: {c.reason}" if c.reason else text

    def _shadow_of(self, c: ModelCommand) -> Shadow:
        shadow = self.gk.shadows.load()
        if shadow is None:
            raise Refused("no challenger is in shadow")
        if c.version is not None and c.version != shadow.candidate_version:
            raise Refused(f"version {c.version} is not in shadow (the challenger is version "
                          f"{shadow.candidate_version})")
        return shadow

    def _end_shadow_under(self, shadow: Shadow | None, c: ModelCommand, what: str) -> list[ModelDecision]:
        """A challenger compared with a champion that no longer serves is rejected (its own decision)."""
        if shadow is None:
            return []
        result = self.gk.gate_so_far(shadow)
        try:
            return self.gk._end_shadow(  # noqa: SLF001 - the gatekeeper's own flow
                shadow, "rejected", f"{what} by {c.requested_by} while this challenger was in shadow",
                gate_evidence(result), result, {"pairs_by_source": shadow.n_by_source()},
                basis="operator", requested_by=c.requested_by)
        except Exception as exc:  # noqa: BLE001 - the command itself was carried out
            log.warning("the shadow could not be ended", extra={"candidate": shadow.candidate_version,
                                                                 "error": str(exc)})
            return []

    # --- the commands ------------------------------------------------------------------------
    def _promote(self, c: ModelCommand) -> list[ModelDecision]:
        gk, s = self.gk, self.settings
        version = str(c.version)
        champion = gk.serving.champion()
        if champion == version:
            raise Refused(f"version {version} is already the champion")
        shadow = gk.shadows.load()
        if shadow is not None and shadow.candidate_version == version:
            return self._promote_shadow(c, shadow, self._why(f"promoted by hand by {c.requested_by} "
                                                             "before the gate decided", c))
        run_id = gk.registry.run_id_of(version)
        if run_id is None:
            raise Refused(f"{s.model_name} has no registered version {version}")
        work = child_path(s.gatekeeper_dir, "manual", version)  # never outside the gatekeeper's state
        shutil.rmtree(work, ignore_errors=True)
        files = gk.registry.download_candidate(run_id, work)
        try:
            head_meta = json.loads((files.triton_dir / "head.json").read_text())
        except (OSError, ValueError) as exc:
            raise Refused(f"version {version} has no readable head.json: {exc}") from None
        problems = check_head_files(files.triton_dir) or gk.serving.ensure_backbone(
            head_meta, files.triton_dir / "backbone", files.triton_dir / "calibration.npz")
        problems += check_head_meta(head_meta, gk.serving.backbone())
        if problems:
            raise Refused(f"version {version} failed infra validation: " + "; ".join(problems))
        if int(version) not in head_versions_on_disk(gk.serving.repo):
            try:
                gk.serving.add_head(version, files.triton_dir)
            except TritonError as exc:
                raise Refused(f"Triton could not load version {version}: {exc}") from None
        report = validate_loaded(
            gk.serving.triton, version, files.known_images, image_size=int(head_meta["image_size"]),
            tolerance=gk.serving.validation_tolerance(), max_latency_ms=s.gatekeeper_validation_max_latency_ms,
            warmup=s.gatekeeper_validation_warmup_requests, timed=s.gatekeeper_validation_latency_requests)
        if not report.ok:
            if version not in gk.serving.roles().values():
                gk.serving.drop_head(version)
            raise Refused(f"version {version} failed infra validation: " + "; ".join(report.problems))
        gk._log_validation(run_id, report)  # noqa: SLF001
        answer = gk._promote(  # noqa: SLF001
            version, evidence=Evidence(), run_id=run_id,
            reason=self._why(f"promoted by hand by {c.requested_by}, bypassing the shadow gate", c),
            basis="operator", requested_by=c.requested_by, command_id=c.event_id)
        return self._end_shadow_under(shadow, c, f"champion {champion} was replaced by version {version} "
                                      "by hand") + [answer]

    def _promote_shadow(self, c: ModelCommand, shadow: Shadow, reason: str) -> list[ModelDecision]:
        result = self.gk.gate_so_far(shadow)
        self.gk.shadows.clear()
        self.gk.quality.shadow_ended()
        SHADOW_PAIRS.set(0)
        return [self.gk._promote(  # noqa: SLF001
            shadow.candidate_version, evidence=gate_evidence(result), run_id=shadow.run_id,
            reason=f"{reason} (the gate so far: {result.reason})", result=result,
            extra={"pairs_by_source": shadow.n_by_source()},
            basis="operator", requested_by=c.requested_by, command_id=c.event_id)]

    def _approve(self, c: ModelCommand) -> list[ModelDecision]:
        shadow = self._shadow_of(c)
        return self._promote_shadow(c, shadow, self._why(f"approved by {c.requested_by} before the gate "
                                                         "decided", c))

    def _reject(self, c: ModelCommand) -> list[ModelDecision]:
        shadow = self._shadow_of(c)
        result = self.gk.gate_so_far(shadow)
        return self.gk._end_shadow(  # noqa: SLF001
            shadow, "rejected",
            self._why(f"rejected by {c.requested_by} (the gate so far: {result.reason})", c),
            gate_evidence(result), result, {"pairs_by_source": shadow.n_by_source()},
            basis="operator", requested_by=c.requested_by, command_id=c.event_id)

    def _rollback(self, c: ModelCommand) -> list[ModelDecision]:
        gk, serving = self.gk, self.gk.serving
        history = serving.history()
        current = serving.champion()
        if c.version is not None and c.version != current:
            raise Refused(f"version {c.version} is not the champion (the champion is {current or 'none'})")
        if current is None or len(history) < 2:
            raise Refused(f"there is no previous champion to roll back to (champions so far: "
                          f"{', '.join(history) or 'none'})")
        target = history[-2]
        if int(target) not in head_versions_on_disk(serving.repo):
            dst = self.settings.gatekeeper_dir / "rollback" / target
            folder = gk.registry.download_version_head(target, dst)
            serving.add_head(target, folder)
        shadow = gk.shadows.load()
        new_history = history[:-1]
        previous = new_history[-2] if len(new_history) >= 2 else None
        serving.switch_champion(target, previous=previous, history=new_history)
        gk.registry.set_alias(CHAMPION, target)
        serving.retire_unused()
        answer = gk._decide(  # noqa: SLF001
            candidate_version=current, champion_version=target, decision="rolled_back",
            reason=self._why(f"rolled back by {c.requested_by}: champion {current} replaced by the "
                             f"previous champion {target}", c),
            evidence=Evidence(), run_id=gk.registry.run_id_of(current),
            basis="operator", requested_by=c.requested_by, command_id=c.event_id)
        ended = self._end_shadow_under(shadow, c, f"champion {current} was rolled back to {target}")
        return ended + [answer]
