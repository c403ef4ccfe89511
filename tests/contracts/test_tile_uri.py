"""The shape of a tile URI, checked by the contract without any configuration."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from emberwatch.contracts.events import TileReady
from emberwatch.contracts.tile_uri import TileUriRefused, parse_tile_uri

ID = "ab" * 32


def test_the_store_s_own_uris_are_accepted():
    assert parse_tile_uri(f"file:///state/tiles/ab/{ID}.png", ID).path == f"/state/tiles/ab/{ID}.png"
    assert parse_tile_uri(f"file:///a%20b/ab/{ID}.jpg", ID).path == f"/a b/ab/{ID}.jpg"
    s3 = parse_tile_uri(f"s3://emberwatch-tiles/tiles/ab/{ID}.webp", ID)
    assert (s3.bucket, s3.path, s3.ext) == ("emberwatch-tiles", f"tiles/ab/{ID}.webp", "webp")


@pytest.mark.parametrize(("uri", "scheme", "bucket", "path", "ext"), [
    (f"file:///ab/{ID}.jpeg", "file", None, f"/ab/{ID}.jpeg", "jpeg"),
    (f"file:///t/v1.2/x_y~z-w/ab/{ID}.gif", "file", None, f"/t/v1.2/x_y~z-w/ab/{ID}.gif", "gif"),
    (f"file:///t/.cache/ab/{ID}.png", "file", None, f"/t/.cache/ab/{ID}.png", "png"),  # a dot first: full checks
    (f"file:///t/a%2Bb/ab/{ID}.png", "file", None, f"/t/a+b/ab/{ID}.png", "png"),
    (f"s3://my.tiles-1/ab/{ID}.jpg", "s3", "my.tiles-1", f"ab/{ID}.jpg", "jpg"),
    (f"s3://tiles/a/b.c/ab/{ID}.png", "s3", "tiles", f"a/b.c/ab/{ID}.png", "png"),
])
def test_plain_and_unusual_store_uris_give_the_same_parts(uri, scheme, bucket, path, ext):
    parts = parse_tile_uri(uri, ID)
    assert (parts.scheme, parts.bucket, parts.path, parts.ext) == (scheme, bucket, path, ext)


@pytest.mark.parametrize(("uri", "reason"), [
    (f"s3://ab/{ID}.png", "host"),
    (f"s3:///ab/{ID}.png", "host"),
    (f"file:///t/ab/{ID}.png.png", "name"),
    (f"file:///t/ab/{ID}.PNG", "name"),
    (f"file:///t/ab/.{ID}.png", "name"),
    (f"file:///t/xab/{ID}.png", "name"),
    ("file:///etc/passwd", "name"),
    ("/etc/passwd", "scheme"),
    (f"http://127.0.0.1:8000/ab/{ID}.png", "scheme"),
    (f"https://tiles.example/ab/{ID}.png", "scheme"),
    (f"gs://bucket/ab/{ID}.png", "scheme"),
    (f"FILE:///t/ab/{ID}.png", "scheme"),
    (f"file://evil/t/ab/{ID}.png", "host"),
    (f"file://localhost/t/ab/{ID}.png", "host"),
    (f"s3://user@bucket/ab/{ID}.png", "host"),
    (f"s3://bucket:9000/ab/{ID}.png", "host"),
    (f"file:///t/../etc/ab/{ID}.png", "traversal"),
    (f"file:///t/%2e%2e/etc/ab/{ID}.png", "traversal"),
    (f"file:///t/%2E%2E/ab/{ID}.png", "traversal"),
    (f"file:///t/..%2fetc/ab/{ID}.png", "encoding"),
    (f"file:///t/%252e%252e/ab/{ID}.png", "encoding"),
    (f"file:///t//ab/{ID}.png", "traversal"),
    (f"file:///t/ab/{ID}.png?x=1", "query"),
    (f"file:///t/ab/{ID}.png#f", "query"),
    (f"file:///t/a b/ab/{ID}.png", "encoding"),
    (f"file:///t/ab/{ID}.html", "name"),
    (f"file:///t/cd/{ID}.png", "name"),
    (f"file:///t/ab/{'cd' * 32}.png", "name"),
    (f"file:///t/ab/{ID}%2epng", "name"),
    ("file:///" + "a/" * 1100 + f"ab/{ID}.png", "length"),
])
def test_other_uris_are_refused_with_a_reason(uri, reason):
    with pytest.raises(TileUriRefused) as caught:
        parse_tile_uri(uri, ID)
    assert caught.value.reason == reason


def test_a_tile_event_naming_another_file_is_invalid():
    fields = dict(producer="t", tile_id=ID, lat=50.0, lon=-120.0, zoom=15, size_px=64, label="wildfire",
                  split="train", fire_key="f", provider="p")
    assert TileReady.create(uri=f"file:///tiles/ab/{ID}.png", **fields).uri.endswith(".png")
    with pytest.raises(ValidationError, match="tile uri"):
        TileReady.create(uri="file:///proc/self/environ", **fields)
