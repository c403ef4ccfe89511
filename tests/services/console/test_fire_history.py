"""A fire's history from its observations: ordered by snapshot time whatever the arrival order, each
event once, bounded, and the "what changed" summary (first seen, last grown)."""

from __future__ import annotations

from services.console.fire_history import FireHistory
from tests.services.console.conftest import fire


def test_history_is_ordered_by_snapshot_and_counts_each_event_once() -> None:
    history = FireHistory()
    late = fire("A", "updated", stage="BH", hectares=40.0, at="2026-07-02T12:00:00")
    early = fire("A", "new", stage="OC", hectares=12.5, at="2026-07-01T12:00:00")
    history.record(late)
    history.record(early)
    history.record(late)  # redelivered
    assert [(h["stage"], h["hectares"], h["change"]) for h in history.of("A")] == [
        ("OC", 12.5, "new"), ("BH", 40.0, "updated")]
    assert history.changes("A") == {"first_seen": "2026-07-01T12:00:00+00:00",
                                    "grown_at": "2026-07-02T12:00:00+00:00", "grown_from_hectares": 12.5}
    assert history.of("unknown") == [] and history.changes("unknown")["first_seen"] is None


def test_a_fire_that_shrank_or_held_has_not_grown_and_history_is_bounded() -> None:
    history = FireHistory(max_entries=3)
    for i, ha in enumerate((30.0, 30.0, 20.0, 20.0, 20.0)):
        history.record(fire("B", "new" if i == 0 else "updated", hectares=ha, at=f"2026-07-0{i + 1}T00:00:00"))
    assert len(history.of("B")) == 3
    assert history.changes("B") == {"first_seen": "2026-07-01T00:00:00+00:00", "grown_at": None,
                                    "grown_from_hectares": None}
