"""Operator commands (``models.commands.v1``) as steps of the state machine.

* ``promote VERSION``: the version is loaded and infra-validated (``PrepareManualPromotion``), then it
  becomes the champion with the same switch as a promotion on evidence. Promoting the challenger in
  shadow is an ``approve``.
* ``rollback``: the previous champion serves again at once (``PrepareRollback`` loads it first if it
  was unloaded meanwhile).
* ``approve``: the challenger in shadow is promoted now, on the evidence gathered so far.
* ``reject``: the challenger's shadow ends; it is rejected.

Only a verified command is carried out (the adapter checks its signature and says whose key it is):
with an ``expires_at`` not yet past and no further ahead than ``command_max_age_s``, and an
``event_id`` never seen before (kept until its deadline). Any other is refused and counted by reason;
its answer names no requester when none was shown.

Each command is answered by one decision carrying its ``command_id``, ``requested_by`` and ``issuer``,
published last. One that cannot be carried out is answered too: ``rejected`` with ``refused`` set and
the reason, nothing changed. A challenger whose shadow ends because the champion changed under it is
rejected in a decision of its own (``requested_by`` set, no ``command_id``). A command delivered again
is refused as replayed, with the first answer's outcome in its reason: it is never redone.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from emberwatch.contracts.events import Evidence, ModelCommand, ModelDecision
from services.gatekeeper.core.config import Config
from services.gatekeeper.core.decisions import Step, decide, end_shadow, gate_so_far, promote
from services.gatekeeper.core.effects import (
    CHAMPION,
    Count,
    Effect,
    Guarded,
    Log,
    PrepareManualPromotion,
    PrepareRollback,
    Publish,
    RetireUnused,
    SetAlias,
    SwitchChampion,
)
from services.gatekeeper.core.evidence import gate_evidence
from services.gatekeeper.core.inputs import (
    CommandFailed,
    CommandReceived,
    ManualPromotionReady,
    ManualPromotionRefused,
    RollbackReady,
)
from services.gatekeeper.core.shadow import Shadow
from services.gatekeeper.core.state import KEEP_ANSWERS, GatekeeperState


class Refused(Exception):
    """The command cannot be carried out; ``reason`` labels the refusals' counter."""

    def __init__(self, message: str, reason: str = "not_possible"):
        super().__init__(message)
        self.reason = reason


def _why(text: str, c: ModelCommand) -> str:
    return f"{text}: {c.reason}" if c.reason else text


def answered(state: GatekeeperState, config: Config, c: ModelCommand, issuer: str | None, outcome: str,
             effects: list[Effect], *, new: bool) -> Step:
    """Finish a command: its decisions carry the issuer, its answer is published last and remembered."""
    published = [e for e in effects if isinstance(e, Publish)]
    others = [e for e in effects if not isinstance(e, Publish)]
    answer = next((p for p in published if getattr(p.event, "command_id", None) == c.event_id), published[-1])
    events = [p.event for p in published if p is not answer] + [answer.event]
    if outcome == "done":
        events = [d.model_copy(update={"issuer": issuer}) if getattr(d, "requested_by", None) else d for d in events]
    last: ModelDecision = events[-1]  # type: ignore[assignment]
    if new:  # the first answer to a verified command (a replay's never replaces it)
        answers = {**state.answers, str(last.command_id): json.loads(last.to_bytes())}
        state = state.with_(answers=dict(list(answers.items())[-KEEP_ANSWERS:]))
    return state, [*others, Count("commands", (c.command, outcome)),
                   Log("info", "command answered", {"command": c.command, "outcome": outcome,
                                                    "requested_by": last.requested_by, "issuer": last.issuer,
                                                    "reason": last.reason}),
                   *[Publish(e) for e in events]]


def refusal(state: GatekeeperState, config: Config, c: ModelCommand, why: str, *, authentic: bool,
            champion: str | None, now: datetime) -> ModelDecision:
    """The answer to a command not carried out. An unverified one names no requester or issuer: they
    are only what the command claims."""
    ours = c.model_name == config.model_name
    champion = champion if ours else None
    shadow = state.shadow if ours else None
    subject = c.version or (champion if c.command == "rollback" else None) or \
        (shadow.candidate_version if shadow is not None else None) or ""
    return ModelDecision.create(
        producer=config.producer, occurred_at=now, model_name=c.model_name, product=config.product,
        candidate_version=subject,
        champion_version=champion, decision="rejected", reason=f"{c.command} refused: {why}", basis="operator",
        requested_by=c.requested_by if authentic else None, issuer=c.issuer if authentic else None,
        command_id=c.event_id, refused=True)


def refused(state: GatekeeperState, config: Config, c: ModelCommand, issuer: str | None, why: str, reason: str,
            *, new: bool, champion: str | None, now: datetime, outcome: str = "refused") -> Step:
    answer = refusal(state, config, c, why, authentic=issuer is not None, champion=champion, now=now)
    counted: list[Effect] = [Count("command_refusals", (reason,))] if outcome == "refused" else []
    return answered(state, config, c, issuer, outcome, [*counted, Publish(answer)], new=new)


def in_time_and_new(state: GatekeeperState, config: Config, c: ModelCommand, now: datetime) -> GatekeeperState:
    """The state with the command's id remembered; Refused unless the command holds now, for a bounded
    time, and was never received before."""
    max_age = timedelta(seconds=config.command_max_age_s)
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
    if c.event_id in state.seen_commands:
        raw = state.answers.get(c.event_id)
        first = ModelDecision.model_validate(raw) if raw else None
        outcome = f" (its first answer: {first.decision}{', refused' if first.refused else ''})" if first else ""
        raise Refused(f"it was replayed: command {c.event_id} was received before{outcome}; nothing was done "
                      "again", "replayed")
    seen = {k: v for k, v in state.seen_commands.items() if datetime.fromisoformat(v) >= now}
    return state.with_(seen_commands={**seen, c.event_id: deadline.isoformat()})


def shadow_of(state: GatekeeperState, c: ModelCommand) -> Shadow:
    if state.shadow is None:
        raise Refused("no challenger is in shadow")
    if c.version is not None and c.version != state.shadow.candidate_version:
        raise Refused(f"version {c.version} is not in shadow (the challenger is version "
                      f"{state.shadow.candidate_version})")
    return state.shadow


def end_shadow_under(state: GatekeeperState, config: Config, c: ModelCommand, what: str, now: datetime) -> Step:
    """A challenger compared with a champion that no longer serves is rejected (its own decision). Its
    Triton role, head and alias going is best effort: the command itself was carried out."""
    shadow = state.shadow
    if shadow is None:
        return state, []
    result = gate_so_far(state, config, shadow)
    state, effects = end_shadow(state, config, now, shadow, f"{what} by {c.requested_by} while this challenger "
                                f"was in shadow", gate_evidence(result), result,
                                {"pairs_by_source": shadow.n_by_source()}, basis="operator",
                                requested_by=c.requested_by)
    world = tuple(e for e in effects if not isinstance(e, (Publish, Count, Log)))
    rest = [e for e in effects if isinstance(e, (Publish, Count, Log))]
    return state, [Guarded(world, "the shadow could not be ended", {"candidate": shadow.candidate_version}), *rest]


def promote_shadow(state: GatekeeperState, config: Config, c: ModelCommand, shadow: Shadow, reason: str,
                   champion: str | None, now: datetime) -> Step:
    result = gate_so_far(state, config, shadow)
    return promote(state.with_(shadow=None), config, now, shadow.candidate_version, champion=champion,
                   evidence=gate_evidence(result), run_id=shadow.run_id,
                   reason=f"{reason} (the gate so far: {result.reason})", result=result,
                   extra={"pairs_by_source": shadow.n_by_source()}, basis="operator",
                   requested_by=c.requested_by, command_id=c.event_id)


def carry_out(state: GatekeeperState, config: Config, e: CommandReceived) -> Step:
    """The command's own step once it is verified, in time and new (Refused: nothing changes)."""
    c = e.command
    if c.model_name != config.model_name:
        raise Refused(f"this gatekeeper serves {config.model_name}, not {c.model_name}")
    if c.command == "reject":
        shadow = shadow_of(state, c)
        result = gate_so_far(state, config, shadow)
        return end_shadow(state, config, e.now, shadow,
                          _why(f"rejected by {c.requested_by} (the gate so far: {result.reason})", c),
                          gate_evidence(result), result, {"pairs_by_source": shadow.n_by_source()},
                          basis="operator", requested_by=c.requested_by, command_id=c.event_id)
    if c.command == "approve":
        shadow = shadow_of(state, c)
        return promote_shadow(state, config, c, shadow, _why(f"approved by {c.requested_by} before the gate "
                                                             "decided", c), e.champion, e.now)
    if c.command == "promote":
        version = str(c.version)
        if e.champion == version:
            raise Refused(f"version {version} is already the champion")
        if state.shadow is not None and state.shadow.candidate_version == version:
            return promote_shadow(state, config, c, state.shadow, _why(
                f"promoted by hand by {c.requested_by} before the gate decided", c), e.champion, e.now)
        return state, [PrepareManualPromotion(c, str(e.issuer), version)]
    # rollback
    history, current = state.champions, e.champion
    if c.version is not None and c.version != current:
        raise Refused(f"version {c.version} is not the champion (the champion is {current or 'none'})")
    if current is None or len(history) < 2:
        raise Refused(f"there is no previous champion to roll back to (champions so far: "
                      f"{', '.join(history) or 'none'})")
    return state, [PrepareRollback(c, str(e.issuer), history[-2], current)]


def command_received(state: GatekeeperState, e: CommandReceived, config: Config) -> Step:
    c = e.command
    if e.issuer is None:
        message, reason = e.unverified or ("it could not be verified", "unsigned")
        return refused(state, config, c, None, f"{message}; nothing was done", reason, new=False,
                       champion=e.champion, now=e.now)
    try:
        state = in_time_and_new(state, config, c, e.now)
    except Refused as exc:
        return refused(state, config, c, e.issuer, str(exc), exc.reason, new=False, champion=e.champion, now=e.now)
    try:
        after, effects = carry_out(state, config, e)
    except Refused as exc:
        return refused(state, config, c, e.issuer, str(exc), exc.reason, new=True, champion=e.champion, now=e.now)
    if any(isinstance(x, (PrepareManualPromotion, PrepareRollback)) for x in effects):
        return after, effects  # answered once the adapter has prepared it
    return answered(after, config, c, e.issuer, "done", effects, new=True)


def manual_promotion_ready(state: GatekeeperState, e: ManualPromotionReady, config: Config) -> Step:
    c, version = e.command, str(e.command.version)
    state, promoted = promote(
        state, config, e.now, version, champion=e.champion, evidence=Evidence(), run_id=e.run_id,
        reason=_why(f"promoted by hand by {c.requested_by}, bypassing the shadow gate", c), basis="operator",
        requested_by=c.requested_by, command_id=c.event_id)
    state, ended = end_shadow_under(state, config, c, f"champion {e.champion} was replaced by version {version} "
                                    "by hand", e.now)
    return answered(state, config, c, e.issuer, "done", promoted + ended, new=True)


def manual_promotion_refused(state: GatekeeperState, e: ManualPromotionRefused, config: Config) -> Step:
    return refused(state, config, e.command, e.issuer, e.message, "not_possible", new=True, champion=e.champion,
                   now=e.now)


def rollback_ready(state: GatekeeperState, e: RollbackReady, config: Config) -> Step:
    c = e.command
    history = state.champions[:-1]
    previous = history[-2] if len(history) >= 2 else None
    effects: list[Effect] = [SwitchChampion(e.target, previous=previous),
                             SetAlias(CHAMPION, e.target), RetireUnused()]
    state, decided = decide(
        state.with_(champions=history), config, e.now, candidate_version=e.current, champion_version=e.target,
        decision="rolled_back", reason=_why(f"rolled back by {c.requested_by}: champion {e.current} replaced by "
                                            f"the previous champion {e.target}", c),
        evidence=Evidence(), run_id=e.run_id, basis="operator", requested_by=c.requested_by, command_id=c.event_id)
    state, ended = end_shadow_under(state, config, c, f"champion {e.current} was rolled back to {e.target}", e.now)
    return answered(state, config, c, e.issuer, "done", effects + decided + ended, new=True)


def command_failed(state: GatekeeperState, e: CommandFailed, config: Config) -> Step:
    c = e.command
    if e.issuer is not None and c.expires_at is not None and c.event_id not in state.seen_commands:
        deadline = min(c.occurred_at + timedelta(seconds=config.command_max_age_s), c.expires_at)
        state = state.with_(seen_commands={**state.seen_commands, c.event_id: deadline.isoformat()})
    return refused(state, config, e.command, e.issuer, f"it failed: {e.error}", "", new=e.issuer is not None,
                   champion=e.champion, now=e.now, outcome="failed")


STEPS = {
    CommandReceived: command_received, ManualPromotionReady: manual_promotion_ready,
    ManualPromotionRefused: manual_promotion_refused, RollbackReady: rollback_ready, CommandFailed: command_failed,
}
