"""The gatekeeper's one state store: durable, versioned, and it brings an older gatekeeper's files over."""

from __future__ import annotations

import json

import pytest

from services.gatekeeper.core.shadow import Pair, Shadow
from services.gatekeeper.core.state import GatekeeperState
from services.gatekeeper.state_store import StateStore


def test_the_state_survives_a_restart(tmp_path):
    store = StateStore(tmp_path)
    assert store.load() == GatekeeperState() and not store.path.exists()  # nothing written until a change
    shadow = Shadow(model_name="m", candidate_version="3", champion_version="2", run_id="r", started_at=5.0)
    shadow = shadow.with_pair(Pair("t1", 1, 0.2, 0.9, "test")).with_pair(Pair("t2", 0, 0.1, 0.6, "live"))
    assert shadow.with_pair(Pair("t1", 1, 0.2, 0.9, "live")) is shadow  # a redelivered tile counts once
    state = GatekeeperState(shadow=shadow, champions=("1", "2"), drift_used={"specificity": 0.01},
                            relabels={"t9": {"action": "retire", "label": None, "fire_key": "f"}})
    store.save(state)

    again = StateStore(tmp_path).load()
    assert again == state
    counts = again.shadow.counts()
    assert (counts.n, counts.n_wildfire) == (2, 1)
    # t1: champion wrong (0.2 < 0.5), challenger right; t2: champion right, challenger wrong
    assert counts.flat().tolist() == [0, 0, 1, 0, 0, 1, 0, 0]
    assert again.shadow.n_by_source() == {"test": 1, "live": 1}
    assert again.retired("t9") and json.loads(store.path.read_text())["schema_version"] == 1


def test_a_state_of_another_schema_is_refused(tmp_path):
    (tmp_path / "state.json").write_text(json.dumps({"schema_version": 99, "state": {}}))
    with pytest.raises(ValueError, match="schema version 99"):
        StateStore(tmp_path).load()


def test_an_older_gatekeepers_files_are_brought_over_once(tmp_path):
    shadow = {"model_name": "m", "candidate_version": "3", "champion_version": "2", "run_id": "r",
              "pairs": [{"tile_id": "t1", "label": 1, "champion_wildfire": 0.2, "challenger_wildfire": 0.9,
                         "source": "test"}], "last_checked_n": 1, "last_look_n": 0, "alpha_spent": 0.0,
              "started_at": 7.0, "warnings": []}
    files = {"shadow.json": shadow, "champions.json": ["1", "2"], "drift.json": {"wildfire_recall": 0.02},
             "validation_failures.json": [{"version": "4", "reason": "x"}],
             "human_labels.json": {"t1": {"label": "nowildfire", "labelled_by": "a", "event_id": "e",
                                          "given_at": "2026-01-01T00:00:00+00:00"}}}
    for name, content in files.items():
        (tmp_path / name).write_text(json.dumps(content))
    state = StateStore(tmp_path).load()
    assert state.shadow.pairs == [Pair("t1", 1, 0.2, 0.9, "test")] and state.champions == ("1", "2")
    assert state.drift_used == {"wildfire_recall": 0.02} and state.validation_failures[0].version == "4"
    assert state.label_for("t1", "wildfire") == "nowildfire"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]  # the old files are gone
    assert StateStore(tmp_path).load() == state
