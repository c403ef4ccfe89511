"""The shadow's pairs are durable: a restart resumes the comparison where it was."""

from __future__ import annotations

from services.gatekeeper.shadow_state import Pair, Shadow, ShadowStore


def test_shadow_pairs_survive_a_restart(tmp_path):
    store = ShadowStore(tmp_path)
    assert store.load() is None
    shadow = Shadow(model_name="m", candidate_version="3", champion_version="2", run_id="r")
    assert shadow.add(Pair("t1", 1, 0.2, 0.9, "test"))
    assert shadow.add(Pair("t2", 0, 0.1, 0.6, "live"))
    assert not shadow.add(Pair("t1", 1, 0.2, 0.9, "live"))  # a redelivered tile counts once
    shadow.last_checked_n = 2
    store.save(shadow)

    again = ShadowStore(tmp_path).load()
    assert again == shadow
    counts = again.counts()
    assert (counts.n, counts.n_wildfire) == (2, 1)
    # t1: champion wrong (0.2 < 0.5), challenger right; t2: champion right, challenger wrong
    assert counts.flat().tolist() == [0, 0, 1, 0, 0, 1, 0, 0]
    assert again.n_by_source() == {"test": 1, "live": 1}
    store.clear()
    assert store.load() is None
