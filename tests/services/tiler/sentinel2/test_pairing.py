"""The pair's decision: fire tile between start and end, control before the start, retry, give up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.tiler.sentinel2.pairing import GiveUp, PairPolicy, Ready, RetryLater, decide
from services.tiler.sentinel2.scene_choice import Assessed

START = datetime(2026, 7, 10, 12, tzinfo=UTC)
POLICY = PairPolicy(max_cloud_fraction=0.2, retry_every=timedelta(hours=12), give_up_after=timedelta(days=20))


def _scene(days_from_start: float, cloud: float) -> Assessed:
    at = START + timedelta(days=days_from_start)
    return Assessed(f"S2A_T10UEV_{at:%Y%m%dT%H%M%S}_L2A", at, at + timedelta(hours=6), cloud)


def test_pair_is_the_clearest_during_and_the_last_clear_before() -> None:
    scenes = [_scene(-15, 0.0), _scene(-10, 0.1), _scene(-5, 0.9), _scene(0.5, 0.4), _scene(5.5, 0.05),
              _scene(10.5, 0.0)]
    decision = decide(scenes, START, end=START + timedelta(days=8), now=START + timedelta(days=12), policy=POLICY)
    assert isinstance(decision, Ready)
    assert decision.post.acquired_at == START + timedelta(days=5.5)  # the one after the end is not a fire tile
    assert decision.pre.acquired_at == START - timedelta(days=10)  # the cloudy one at -5 is skipped


def test_no_clear_pre_fire_scene_still_gives_the_fire_tile_with_a_reason() -> None:
    decision = decide([_scene(-5, 0.9), _scene(0.5, 0.0)], START, None, START + timedelta(days=1), POLICY)
    assert isinstance(decision, Ready) and decision.pre is None and "before its start" in decision.pre_missing_reason


def test_retry_while_no_clear_scene_then_give_up() -> None:
    scenes = [_scene(-10, 0.0), _scene(0.5, 0.8)]
    now = START + timedelta(days=3)
    retry = decide(scenes, START, None, now, POLICY)
    assert retry == RetryLater(at=now + timedelta(hours=12), reason=retry.reason) and "none with at most 20%" in retry.reason
    late = decide(scenes, START, None, START + timedelta(days=20), POLICY)
    assert isinstance(late, GiveUp) and "within 20 days" in late.reason


def test_an_ended_fire_is_given_up_once_its_last_acquisitions_are_catalogued() -> None:
    end = START + timedelta(days=3)
    assert isinstance(decide([], START, end, end + timedelta(days=1), POLICY), RetryLater)
    gave_up = decide([], START, end, end + timedelta(days=2), POLICY)
    assert isinstance(gave_up, GiveUp) and "ended" in gave_up.reason
