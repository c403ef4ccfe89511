"""The tile store's URIs: what the tiler writes is what the trainer and the gatekeeper read."""

from __future__ import annotations

import pytest

from emberwatch.common.tile_store import (
    TileMissing,
    TileStore,
    TileUnreachable,
    UnsupportedTileUri,
    read_tile,
)


def test_tiles_are_read_by_uri(tmp_path):
    tile = tmp_path / "a b.png"
    tile.write_bytes(b"png")
    assert read_tile(tile.as_uri()) == b"png"
    with pytest.raises(TileMissing):
        read_tile((tmp_path / "missing.png").as_uri())
    for bad in ("gs://bucket/x.png", str(tile), "file://otherhost/x.png"):  # not a URI the store hands out
        with pytest.raises(UnsupportedTileUri):
            read_tile(bad)
    with pytest.raises(TileUnreachable):
        read_tile("http://127.0.0.1:9/x.png", timeout_s=2)


def test_a_tile_written_by_the_store_is_read_back_by_its_uri_once(tmp_path):
    store = TileStore(tmp_path / "tiles")
    first = store.put(b"\x89PNG same bytes", "png")
    again = store.put(b"\x89PNG same bytes", "png")
    assert first.created and not again.created
    assert first.uri == again.uri and first.tile_id == again.tile_id
    assert read_tile(first.uri) == b"\x89PNG same bytes"
    assert [p.name for p in (tmp_path / "tiles").rglob("*") if p.is_file()] == [f"{first.tile_id}.png"]
