"""The tile store's URIs: what the tiler writes is what the trainer, the gatekeeper and the console read,
and only that (tests/security/test_tile_uris.py tries the hostile URIs against every reader)."""

from __future__ import annotations

import hashlib

import pytest

from emberwatch.common.config import Settings
from emberwatch.common.tile_store import (
    TileHashMismatch,
    TileMissing,
    TileStore,
    TileTooLarge,
    UnsupportedTileUri,
    check_tile_uri,
    read_tile,
)


def settings(root) -> Settings:
    return Settings(tiler_tile_root=root, tile_max_bytes=4096)


def test_a_tile_written_by_the_store_is_read_back_by_its_uri_once(tmp_path):
    root = tmp_path / "a b" / "tiles"  # a root whose URI is percent-encoded
    store = TileStore(root)
    first = store.put(b"\x89PNG same bytes", "png")
    again = store.put(b"\x89PNG same bytes", "png")
    assert first.created and not again.created
    assert first.uri == again.uri and first.tile_id == again.tile_id
    assert "%20" in first.uri
    assert read_tile(first.uri, first.tile_id, settings=settings(root)) == b"\x89PNG same bytes"
    assert check_tile_uri(first.uri, first.tile_id, settings(root)) == "file"
    assert [p.name for p in root.rglob("*") if p.is_file()] == [f"{first.tile_id}.png"]


def test_a_store_writes_only_extensions_its_readers_accept(tmp_path):
    with pytest.raises(ValueError, match="extension"):
        TileStore(tmp_path).put(b"x", "html")
    assert not any(tmp_path.iterdir())


def test_a_missing_tile_a_foreign_uri_a_big_tile_and_foreign_bytes_are_told_apart(tmp_path):
    s, store = settings(tmp_path), TileStore(tmp_path)
    missing = hashlib.sha256(b"never stored").hexdigest()
    with pytest.raises(TileMissing):
        read_tile(store.path_for(missing, "png").as_uri(), missing, settings=s)
    with pytest.raises(UnsupportedTileUri) as refused:  # the right name, in another directory
        read_tile(TileStore(tmp_path / "other").path_for(missing, "png").as_uri(), missing, settings=s)
    assert refused.value.reason == "outside_store"
    big = store.put(b"\x89PNG" + bytes(5000), "png")
    with pytest.raises(TileTooLarge):
        read_tile(big.uri, big.tile_id, settings=s)
    swapped = store.put(b"\x89PNG one", "png")
    store.path_for(swapped.tile_id, "png").write_bytes(b"\x89PNG another")  # the file changed under its name
    with pytest.raises(TileHashMismatch):
        read_tile(swapped.uri, swapped.tile_id, settings=s)


def test_the_tile_root_follows_the_state_dir_unless_set(tmp_path, monkeypatch):
    monkeypatch.setenv("EMBERWATCH_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("EMBERWATCH_TILER_TILE_ROOT", raising=False)
    assert Settings().tile_root == tmp_path / "state" / "tiles"
    monkeypatch.setenv("EMBERWATCH_TILER_TILE_ROOT", str(tmp_path / "tiles"))
    assert Settings().tile_root == tmp_path / "tiles"
