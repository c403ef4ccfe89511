"""The files the gatekeeper owns: shadow pairs survive a restart; the Triton repository layout."""

from __future__ import annotations

import json

import numpy as np
import pytest

from services.gatekeeper import triton_repo
from services.gatekeeper.shadow_state import Pair, Shadow, ShadowStore
from emberwatch.common.tile_store import TileMissing, TileUnreachable, UnsupportedTileUri, read_tile


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


def test_head_versions_and_config_are_written_before_loading(tmp_path):
    repo = tmp_path / "repo"
    triton_repo.install_templates(repo)
    for rel in triton_repo.TEMPLATE_FILES:
        assert (repo / rel).is_file()
    src = tmp_path / "art"
    src.mkdir()
    np.savez(src / "head.npz", mean=np.zeros(4, np.float32))
    (src / "head.json").write_text("{}")
    triton_repo.place_head(repo, "7", src)
    triton_repo.place_head(repo, 3, src)
    assert triton_repo.head_versions_on_disk(repo) == [3, 7]
    assert (repo / "head" / "7" / "model.py").read_text() == (repo / "head" / "model.py").read_text()
    triton_repo.write_head_config(repo, [7, 3, 3], 2048)
    assert triton_repo.head_config_versions(repo) == [3, 7]
    assert "dims: [ 2048 ]" in (repo / "head" / "config.pbtxt").read_text()
    with pytest.raises(ValueError):
        triton_repo.write_head_config(repo, [], 2048)
    triton_repo.remove_head(repo, 3)
    assert triton_repo.head_versions_on_disk(repo) == [7]
    with pytest.raises(FileNotFoundError):
        triton_repo.place_head(repo, 9, tmp_path / "nothing")


def test_serving_roles_are_replaced_atomically(tmp_path):
    repo = tmp_path / "repo"
    assert triton_repo.read_serving(repo) == {"champion": None, "challenger": None, "previous": None}
    triton_repo.write_serving(repo, champion=2, challenger="3")
    triton_repo.write_serving(repo, challenger=None, previous="1")
    assert json.loads(triton_repo.serving_path(repo).read_text()) == {
        "champion": "2", "challenger": None, "previous": "1"}
    assert not [p for p in (repo / "wildfire").iterdir() if p.name.startswith(".")]
    with pytest.raises(ValueError):
        triton_repo.write_serving(repo, king="1")


def test_tiles_are_read_by_uri(tmp_path):
    tile = tmp_path / "a b.png"
    tile.write_bytes(b"png")
    assert read_tile(tile.as_uri()) == b"png"
    with pytest.raises(TileMissing):
        read_tile((tmp_path / "missing.png").as_uri())
    for bad in ("s3://bucket/x.png", str(tile), "file://otherhost/x.png"):  # not a URI the store hands out
        with pytest.raises(UnsupportedTileUri):
            read_tile(bad)
    with pytest.raises(TileUnreachable):
        read_tile("http://127.0.0.1:9/x.png", timeout_s=2)
