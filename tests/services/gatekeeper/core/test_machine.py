"""The gatekeeper's core driven through whole shadows, with no broker, MLflow or Triton: only inputs in,
state and effects out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from emberwatch.contracts.events import (
    LabelFeedback,
    ModelCandidate,
    ModelCommand,
    ModelDecision,
    SplitCounts,
    TileReady,
    TileRelabelled,
)
from services.gatekeeper.core import effects as fx
from services.gatekeeper.core import inputs as ev
from services.gatekeeper.core.config import Config
from services.gatekeeper.core.decide_promotion import GateThresholds
from services.gatekeeper.core.machine import step
from services.gatekeeper.core.shadow import LABEL_INDEX
from services.gatekeeper.core.state import GatekeeperState
from services.gatekeeper.state_store import StateStore

CONFIG = Config(model_name="m", check_every=10, floor_min_per_class=10, floor_recall=0.3, floor_specificity=0.3,
                gate=GateThresholds(min_pairs=60, min_wildfire_pairs=20, min_fire_free_pairs=20, max_pairs=120,
                                    recall_margin=0.05, specificity_margin=0.2), drift_budget=0.5)
T0 = 1_000_000.0


def candidate(version: str) -> ModelCandidate:
    return ModelCandidate.create(producer="t", model_name="m", version=version, run_id=f"run{version}",
                                 artifact_uri=f"runs:/run{version}/triton", dataset_digest="d",
                                 counts={"train": SplitCounts()}, metrics={})


def tile(i: int, label: str) -> TileReady:
    tile_id = f"{i:064x}"
    return TileReady.create(producer="t", tile_id=tile_id, uri=f"file:///tiles/{tile_id[:2]}/{tile_id}.png",
                            lat=50, lon=-110, zoom=14, size_px=32, label=label, split="test", fire_key="f", provider="p")


def published(effects: list, kind: type = ModelDecision) -> list:
    return [e.event for e in effects if isinstance(e, fx.Publish) and isinstance(e.event, kind)]


def run(state: GatekeeperState, event: ev.Input) -> tuple[GatekeeperState, list]:
    state, effects = step(state, event, CONFIG)
    return state, effects


def held_out_scores(n: int, rng: np.random.Generator, *, champion: bool = True) -> tuple[ev.TestScore, ...]:
    """A challenger right on every tile, a champion right on 70 % of them."""
    out = []
    for i in range(n):
        label = i % 2
        right = 0.9 if label else 0.1
        wrong = 1 - right
        out.append(ev.TestScore(f"{10**6 + i:064x}", label, right, (right if rng.random() < 0.7 else wrong) if champion
                                else None))
    return tuple(out)


def into_shadow(state: GatekeeperState, version: str = "2") -> tuple[GatekeeperState, list]:
    """candidate -> verified -> validated, with the champion serving version 1."""
    c = candidate(version)
    state, effects = run(state, ev.CandidateReceived(c, T0))
    assert effects == [fx.VerifyCandidate(c)]
    state, effects = run(state, ev.CandidateVerified(c, c.run_id, T0))
    assert isinstance(effects[-1], fx.IntakeCandidate) and effects[-1].run_id == c.run_id
    state, more = run(state, ev.CandidateValidated(c, "1", held_out_scores(30, np.random.default_rng(1)), T0))
    return state, effects[:-1] + more


def live_pairs(state: GatekeeperState, start: int, n: int, now: float = T0 + 60) -> tuple[GatekeeperState, list]:
    """Live tiles a better challenger scores right and the champion gets wrong one time in four."""
    out: list = []
    for i in range(start, start + n):
        label = "wildfire" if i % 2 else "nowildfire"
        t = tile(i, label)
        state, effects = run(state, ev.TileArrived(t, now))
        if state.shadow is None:
            return state, out + effects
        assert effects == [fx.ScorePair(t, "1", "2")]
        right = 0.95 if label == "wildfire" else 0.05
        champion = right if i % 4 else 1 - right
        state, effects = run(state, ev.PairScored(t, champion, right, now))
        out += effects
        if state.shadow is None:
            break
    return state, out


def test_a_whole_shadow_candidate_pairs_looks_decision():
    state = GatekeeperState(champions=("1",))
    state, effects = into_shadow(state)
    shadow = state.shadow
    assert (shadow.candidate_version, shadow.champion_version, len(shadow.pairs)) == ("2", "1", 30)
    assert fx.SetChallenger("2") in effects and fx.SetAlias("challenger", "2") in effects
    assert published(effects) == []  # 30 pairs: the gate waits for its minimums

    state, effects = live_pairs(state, 0, 200)
    [decision] = published(effects)
    looks = [e for e in effects if isinstance(e, fx.Log) and e.message == "shadow continues"]
    assert len(looks) >= 2  # the gate looked, and waited, before it decided
    assert (decision.decision, decision.candidate_version, decision.champion_version) == ("promoted", "2", "1")
    assert decision.basis == "gate" and decision.evidence.rule == "superior"
    assert decision.evidence.n == 30 + sum(1 for e in effects if e == fx.Count("shadow_tiles", ("scored",)))
    assert state.shadow is None and state.champions == ("1", "2") and set(state.drift_used) == {
        "wildfire_recall", "specificity"}
    world = [e for e in effects if isinstance(e, (fx.SwitchChampion, fx.SetAlias, fx.RetireUnused))]
    assert world == [fx.SwitchChampion("2", previous="1"), fx.SetAlias("champion", "2"), fx.RetireUnused()]
    record = next(e for e in effects if isinstance(e, fx.RecordToMlflow))
    assert record.run_id == "run2" and record.name == "gatekeeper/promoted.json" and record.metrics["gate_n"] >= 60
    # live tiles the champion called a wildfire were detections, with the challenger's opinion beside them
    detections = published(effects, kind=object)[:-1]
    assert detections and all(d.challenger_version == "2" and d.model_version == "1" for d in detections)

    # redelivered: the same decision again, nothing else
    again, effects = run(state, ev.CandidateReceived(candidate("2"), T0 + 999))
    assert again is state and [e.event.event_id for e in effects] == [decision.event_id]


def test_a_restart_from_stored_state_decides_as_if_none_happened(tmp_path):
    state, _ = into_shadow(GatekeeperState(champions=("1",)))
    state, _ = live_pairs(state, 0, 20)
    assert state.shadow is not None and state.shadow.last_checked_n == 50
    StateStore(tmp_path).save(state)
    restarted = StateStore(tmp_path).load()
    assert restarted == state
    _, straight = live_pairs(state, 20, 200)
    _, resumed = live_pairs(restarted, 20, 200)
    [a], [b] = published(straight), published(resumed)
    assert a.event_id == b.event_id and a.evidence == b.evidence


def test_the_gate_rejects_at_its_time_limit_and_a_new_candidate_supersedes():
    state, _ = into_shadow(GatekeeperState(champions=("1",)))
    late = T0 + CONFIG.max_shadow_s + 1
    t = tile(1, "wildfire")
    state, effects = run(state, ev.TileArrived(t, late))
    state, effects = run(state, ev.TileTrainedOn(t, late))  # a training tile: no pair, but the time is up
    [decision] = published(effects)
    assert (decision.decision, decision.basis) == ("rejected", "inconclusive") and state.shadow is None
    assert fx.UnloadModel("2") in effects and fx.ClearAlias("challenger", "2") in effects

    state, _ = into_shadow(state, "3")
    c = candidate("4")
    state, effects = run(state, ev.CandidateVerified(c, c.run_id, T0))
    [superseded] = published(effects)
    assert superseded.candidate_version == "3" and superseded.basis == "superseded" and state.shadow is None


def test_a_shadow_no_tile_reaches_is_decided_by_the_clock_at_its_time_limit():
    state, _ = into_shadow(GatekeeperState(champions=("1",)))
    before = state
    for now in (T0 + 60, T0 + CONFIG.max_shadow_s - 1):  # time passing inside the limit changes nothing
        state, effects = run(state, ev.TimeTick(now))
        assert state is before and effects == []

    state, effects = run(state, ev.TimeTick(T0 + CONFIG.max_shadow_s))
    [decision] = published(effects)
    assert (decision.decision, decision.basis, decision.candidate_version) == ("rejected", "inconclusive", "2")
    assert decision.evidence.n == 30 and state.shadow is None
    assert fx.UnloadModel("2") in effects and fx.ClearAlias("challenger", "2") in effects

    # no shadow: a tick is nothing, and the decision is not taken twice
    again, effects = run(state, ev.TimeTick(T0 + 2 * CONFIG.max_shadow_s))
    assert again is state and effects == []


def test_the_first_model_meets_the_floor_or_is_rejected_and_failures_alert():
    c = candidate("1")
    state, effects = run(GatekeeperState(), ev.CandidateValidated(c, None, held_out_scores(40, np.random.default_rng(2),
                                                                                        champion=False), T0))
    [decision] = published(effects)
    assert (decision.decision, decision.basis, decision.champion_version) == ("promoted", "floor", None)
    assert state.champions == ("1",) and fx.SwitchChampion("1", previous=None) in effects

    state, effects = run(GatekeeperState(), ev.CandidateValidated(c, None, (), T0))
    [decision] = published(effects)
    assert decision.decision == "rejected" and "too few test tiles" in decision.reason
    assert fx.UnloadModel("1") in effects and state.champions == ()

    state = GatekeeperState()
    for version in ("5", "6", "7"):
        state, effects = run(state, ev.CandidateInvalid(candidate(version), "1", "infra validation: broken", None, T0))
        assert published(effects)[0].decision == "rejected"
    [alert] = [e for e in effects if isinstance(e, fx.RaiseAlert)]
    assert alert.details["versions"] == ["5", "6", "7"]


def test_later_fires_and_a_persons_label_change_the_shadows_pairs():
    state, _ = into_shadow(GatekeeperState(champions=("1",)))
    first, second = state.shadow.pairs[0].tile_id, state.shadow.pairs[1].tile_id

    def relabel(tile_id: str, action: str) -> TileRelabelled:
        return TileRelabelled.create(producer="tiler", tile_id=tile_id, action=action, previous_label="nowildfire",
                                     label="wildfire" if action == "relabel" else None, fire_key="later",
                                     matched_fire_key="f", distance_km=1.0, reason="a later fire")

    state, _ = run(state, ev.Relabelled((relabel(first, "retire"), relabel(second, "relabel")), T0))
    assert not state.shadow.has(first) and state.retired(first)
    assert next(p for p in state.shadow.pairs if p.tile_id == second).label == 1
    unchanged, effects = run(state, ev.Relabelled((relabel(second, "retire"),), T0))  # a relabel wins
    assert unchanged is state and effects == []

    feedback = LabelFeedback.create(producer="console", tile_id=second, label="nowildfire", labelled_by="console:a",
                                    occurred_at=datetime(2026, 12, 3, 10, tzinfo=UTC))
    state, effects = run(state, ev.LabelGiven(feedback, T0))
    assert next(p for p in state.shadow.pairs if p.tile_id == second).label == 0
    assert fx.Count("human_labels", ("nowildfire",)) in effects
    assert run(state, ev.LabelGiven(feedback, T0))[0] is state  # redelivered: nothing changes
    t = tile(7, "wildfire")
    state, _ = run(state, ev.Relabelled((relabel(t.tile_id, "retire"),), T0))
    assert run(state, ev.TileArrived(t, T0))[1] == [fx.Count("shadow_tiles", ("retired",))]


# --- operator commands --------------------------------------------------------------------------------
NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)


def command(kind: str, version: str | None = None, **over) -> ModelCommand:
    return ModelCommand.create(producer="test", command=kind, model_name="m", version=version, requested_by="cli:ops",
                               occurred_at=over.pop("occurred_at", NOW),
                               expires_at=over.pop("expires_at", NOW + timedelta(seconds=60)), **over)


def answer_of(effects: list, c: ModelCommand) -> ModelDecision:
    decisions = published(effects)
    assert decisions[-1].command_id == c.event_id  # the answer is published last
    return decisions[-1]


def test_an_operator_approves_a_challenger_then_rolls_it_back():
    state, _ = into_shadow(GatekeeperState(champions=("1",)))
    approve = command("approve")
    state, effects = run(state, ev.CommandReceived(approve, "operator:ops", None, "1", NOW))
    answer = answer_of(effects, approve)
    assert (answer.decision, answer.candidate_version, answer.issuer, answer.basis) == (
        "promoted", "2", "operator:ops", "operator")
    assert state.shadow is None and state.champions == ("1", "2") and approve.event_id in state.answers
    assert fx.Count("commands", ("approve", "done")) in effects

    back = command("rollback", reason="2 misbehaves")
    state, effects = run(state, ev.CommandReceived(back, "operator:ops", None, "2", NOW))
    assert effects == [fx.PrepareRollback(back, "operator:ops", "1", "2")]  # the adapter loads version 1 first
    state, effects = run(state, ev.RollbackReady(back, "operator:ops", "1", "2", "run2", NOW))
    answer = answer_of(effects, back)
    assert (answer.decision, answer.candidate_version, answer.champion_version) == ("rolled_back", "2", "1")
    assert "2 misbehaves" in answer.reason and state.champions == ("1",)
    assert fx.SwitchChampion("1", previous=None) in effects and fx.SetAlias("champion", "1") in effects

    # the same command again is refused as replayed; nothing is redone
    again, effects = run(state, ev.CommandReceived(back, "operator:ops", None, "1", NOW))
    refused = answer_of(effects, back)
    assert refused.refused and "it was replayed" in refused.reason
    assert "(its first answer: rolled_back)" in refused.reason
    assert again.champions == ("1",) and not any(isinstance(e, fx.SwitchChampion) for e in effects)


def test_a_promotion_by_hand_ends_the_shadow_under_it_and_refusals_change_nothing():
    state, _ = into_shadow(GatekeeperState(champions=("1",)))
    promote = command("promote", "9")
    state, effects = run(state, ev.CommandReceived(promote, "operator:ops", None, "1", NOW))
    assert effects == [fx.PrepareManualPromotion(promote, "operator:ops", "9")]
    state, effects = run(state, ev.ManualPromotionReady(promote, "operator:ops", "run9", "1", NOW))
    ended, answer = published(effects)
    assert (ended.candidate_version, ended.decision, ended.requested_by, ended.command_id) == (
        "2", "rejected", "cli:ops", None)
    assert (answer.decision, answer.candidate_version, answer.champion_version) == ("promoted", "9", "1")
    assert state.shadow is None and state.champions == ("1", "9")

    for c, why, reason in [
        (command("reject"), "no challenger is in shadow", "not_possible"),
        (command("promote", "9"), "already the champion", "not_possible"),
        (command("rollback", expires_at=NOW - timedelta(seconds=1)), "expired at", "expired"),
        (command("rollback", expires_at=None), "has no expires_at", "expired"),
    ]:
        after, effects = run(state, ev.CommandReceived(c, "operator:ops", None, "9", NOW))
        refused = answer_of(effects, c)
        assert refused.refused and why in refused.reason and fx.Count("command_refusals", (reason,)) in effects
        assert after.champions == state.champions and after.shadow is None
    forged = command("rollback")
    after, effects = run(state, ev.CommandReceived(forged, None, ("signature does not verify", "bad_signature"), "9",
                                                   NOW))
    refused = answer_of(effects, forged)
    assert refused.requested_by is None and refused.issuer is None and "signature does not verify" in refused.reason
    assert after.answers == state.answers and after.seen_commands == state.seen_commands  # nothing remembered


def test_the_core_speaks_the_class_order_of_the_models():
    from emberwatch.ml import LABEL_INDEX as MODELS

    assert LABEL_INDEX == MODELS


def test_a_lines_decisions_say_its_product():
    """The core decides for one line: its config names the product its decisions carry."""
    from dataclasses import replace

    line = replace(CONFIG, model_name="m-sentinel2-swir", product="sentinel2-swir")
    c = candidate("1").model_copy(update={"model_name": "m-sentinel2-swir", "product": "sentinel2-swir"})
    state, _ = step(GatekeeperState(), ev.CandidateReceived(c, T0), line)
    state, _ = step(state, ev.CandidateVerified(c, c.run_id, T0), line)
    state, effects = step(state, ev.CandidateInvalid(c, None, "head files missing", None, T0), line)
    [decision] = published(effects)
    assert (decision.product, decision.model_name, decision.decision) == ("sentinel2-swir", "m-sentinel2-swir",
                                                                          "rejected")
    assert published(run(GatekeeperState(), ev.CandidateInvalid(candidate("1"), None, "x", None, T0))[1])[0].product \
        == "mapbox"
