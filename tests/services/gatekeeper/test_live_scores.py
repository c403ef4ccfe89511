"""A replayed or redelivered live tile is handled once: between shadows the champion's scores are
remembered per version (SQLite, across restarts), in a shadow the pairs are; a batch sets aside what
was already handled with one look, without Triton (unreachable here: port 9)."""

from __future__ import annotations

import numpy as np

from emberwatch.common.tile_store import TileStore
from emberwatch.common.triton_client import png_bytes
from services.gatekeeper.gatekeeper import Gatekeeper
from services.gatekeeper.live_scores import LiveScores
from services.gatekeeper.serving.repository import write_serving
from services.gatekeeper.shadow_state import Pair, Shadow
from tests.services.gatekeeper.test_record_quality import live_tile, model, settings, value

CHAMPION = "emberwatch_gatekeeper_champion_tiles_total"
SHADOW = "emberwatch_gatekeeper_shadow_tiles_total"


def test_scores_are_kept_per_version_across_a_restart(tmp_path):
    scores = LiveScores(tmp_path)
    scores.record("1", "a" * 64, 0.9)
    scores.record_many("1", [("b" * 64, 0.2), ("a" * 64, 0.1)])  # the first score stays
    assert LiveScores(tmp_path).scored("1", ["a" * 64, "b" * 64, "c" * 64]) == {"a" * 64, "b" * 64}
    assert LiveScores(tmp_path).scored("2", ["a" * 64]) == set()
    many = [f"{i:064x}" for i in range(1200)]  # more than one query's worth of parameters
    scores.record_many("3", [(t, 0.5) for t in many])
    assert scores.scored("3", many) == set(many)


def test_a_batch_sets_aside_tiles_already_handled_and_scores_the_rest(tmp_path):
    s = settings(tmp_path, model())
    gk = Gatekeeper(s)
    write_serving(gk.serving.repo, champion="1")
    store = TileStore(s.tile_root)  # tiles are read only from the store, by their content's hash
    stored = [store.put(png_bytes(np.full((32, 32, 3), shade, dtype=np.uint8)), "png") for shade in (0, 255)]
    old, new = (live_tile(t.uri, t.tile_id) for t in stored)
    gk.live_scores.record("1", old.tile_id, 0.8)  # scored before a restart
    before = {o: value(CHAMPION, outcome=o) for o in ("replayed", "failed")}

    assert Gatekeeper(s).on_tiles([old, new, old]) == []
    assert value(CHAMPION, outcome="replayed") == before["replayed"] + 2  # one look for the batch
    assert value(CHAMPION, outcome="failed") == before["failed"] + 1  # the new one tried Triton
    assert gk.on_tile(old) == []  # one at a time too (the subscription's fallback)
    assert value(CHAMPION, outcome="replayed") == before["replayed"] + 3

    # in a shadow, the tiles already paired are set aside the same way
    gk.shadows.save(Shadow(model_name=s.model_name, candidate_version="2", champion_version="1", run_id="r",
                           pairs=[Pair(old.tile_id, 1, 0.8, 0.7, "live")]))
    duplicates = value(SHADOW, outcome="duplicate")
    assert gk.on_tiles([old]) == []
    assert value(SHADOW, outcome="duplicate") == duplicates + 1
    assert [p.tile_id for p in gk.shadows.load().pairs] == [old.tile_id]
