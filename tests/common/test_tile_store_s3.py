"""The S3 tile store against a real S3 API: moto's standalone server, spoken to over HTTP by boto3.

What the tiler writes to a bucket is read back by its ``s3://`` URI; the same bytes twice are one
object; a missing tile is permanent, an S3 that does not answer or answers 5xx/throttling/403 is
transient; URIs the store does not hand out are refused; no key reaches an error message or a log.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import traceback
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from pydantic import ValidationError

from emberwatch.common.config import Settings
from emberwatch.common.logging import JsonFormatter
from emberwatch.common.telemetry import free_port
from emberwatch.common.tile_store import (
    PERMANENT,
    TileMissing,
    TileUnreachable,
    UnsupportedTileUri,
    check_tile_uri,
    open_tile_store,
    read_tile,
)
from emberwatch.common.tile_store_s3 import S3Connection, S3TileStore, s3_client
from tests.support.moto_s3 import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY

pytestmark = pytest.mark.timeout(120)
PNG = b"\x89PNG\r\n\x1a\n not really an image, but bytes with a sha256"
ID = "ab" * 32  # a tile id no test stores


def s3_settings(endpoint: str, **overrides) -> Settings:
    values = dict(s3_endpoint_url=endpoint, s3_region=REGION, s3_access_key_id=ACCESS_KEY_ID,
                  s3_secret_access_key=SECRET_ACCESS_KEY, s3_max_attempts=2)
    return Settings(**{**values, **overrides})


def admin(endpoint: str):
    """A plain boto3 client, to look at the bucket behind the store's back."""
    return boto3.session.Session().client("s3", endpoint_url=endpoint, region_name=REGION,
                                          aws_access_key_id="admin", aws_secret_access_key="admin")


def keys_in(endpoint: str, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in admin(endpoint).list_objects_v2(Bucket=bucket).get("Contents", []))


@pytest.fixture
def bucket(s3_endpoint: str) -> str:
    name = f"tiles-{uuid.uuid4().hex[:12]}"
    admin(s3_endpoint).create_bucket(Bucket=name)
    return name


@contextmanager
def answering(status: int, code: str) -> Iterator[tuple[str, list[str]]]:
    """A real HTTP server that answers every request with an S3 error (``status``, ``code``);
    yields its URL and the requests it saw (method and path)."""
    seen: list[str] = []
    body = (f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code>"
            f"<Message>{code}</Message></Error>").encode()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            seen.append(f"{self.command} {self.path}")
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_PUT = do_HEAD = _answer

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_a_tile_put_in_a_bucket_is_read_back_by_its_uri_and_stored_once(s3_endpoint, bucket, tmp_path):
    s = s3_settings(s3_endpoint, tile_store_url=f"s3://{bucket}/tiles/v1")
    store = open_tile_store(s, tmp_path / "local")
    assert isinstance(store, S3TileStore)
    first = store.put(PNG, "png")
    again = store.put(PNG, "png")
    tile_id = hashlib.sha256(PNG).hexdigest()
    key = f"tiles/v1/{tile_id[:2]}/{tile_id}.png"
    assert first.created and not again.created
    assert first.tile_id == again.tile_id == tile_id and first.path is None
    assert first.uri == again.uri == f"s3://{bucket}/{key}"
    assert check_tile_uri(first.uri, first.tile_id, s) == "s3"
    assert keys_in(s3_endpoint, bucket) == [key]
    assert admin(s3_endpoint).head_object(Bucket=bucket, Key=key)["ContentType"] == "image/png"
    assert read_tile(first.uri, first.tile_id, settings=s) == PNG
    assert not (tmp_path / "local").exists()  # nothing written locally


def test_readers_in_many_threads_share_one_client(s3_endpoint, bucket, tmp_path):
    s = s3_settings(s3_endpoint, tile_store_url=f"s3://{bucket}")
    stored = [open_tile_store(s, tmp_path).put(PNG + bytes([i]), "jpg") for i in range(8)]
    assert all(t.uri.startswith(f"s3://{bucket}/{t.tile_id[:2]}/") for t in stored)  # no prefix
    results: dict[str, bytes] = {}

    def read(uri: str, tile_id: str) -> None:
        results[uri] = read_tile(uri, tile_id, settings=s)

    threads = [threading.Thread(target=read, args=(t.uri, t.tile_id)) for t in stored for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert {u: hashlib.sha256(b).hexdigest() for u, b in results.items()} == {t.uri: t.tile_id for t in stored}
    assert s3_client(S3Connection.from_settings(s, read_timeout_s=30.0)) is \
        s3_client(S3Connection.from_settings(s3_settings(s3_endpoint), read_timeout_s=30.0))


def test_a_writer_that_loses_the_race_to_another_replica_writes_nothing(s3_endpoint, bucket, tmp_path):
    """Another replica stores the same bytes between this one's HEAD and its PUT (injected through
    botocore's own event hooks): the conditional PUT is refused, and the tile is not ``created``."""
    s = s3_settings(s3_endpoint, tile_store_url=f"s3://{bucket}/race")
    store = open_tile_store(s, tmp_path)
    raced: list[str] = []

    def other_replica(params, **_) -> None:
        if not raced:
            raced.append(params["Key"])
            admin(s3_endpoint).put_object(Bucket=params["Bucket"], Key=params["Key"], Body=params["Body"])

    events = s3_client(store.connection).meta.events
    events.register("provide-client-params.s3.PutObject", other_replica, unique_id="test-race")
    try:
        lost = store.put(PNG, "png")
    finally:
        events.unregister("provide-client-params.s3.PutObject", unique_id="test-race")
    assert raced and not lost.created
    assert keys_in(s3_endpoint, bucket) == raced
    assert read_tile(lost.uri, lost.tile_id, settings=s) == PNG


def test_a_missing_tile_is_permanent(s3_endpoint, bucket):
    for store in (f"s3://{bucket}/tiles", f"s3://no-such-bucket-{bucket}/tiles"):
        with pytest.raises(TileMissing) as caught:
            read_tile(f"{store}/ab/{ID}.png", ID, settings=s3_settings(s3_endpoint, tile_store_url=store))
        assert isinstance(caught.value, PERMANENT)


def test_an_s3_that_does_not_answer_is_transient(tmp_path):
    s = s3_settings(f"http://127.0.0.1:{free_port()}", tile_store_url="s3://tiles/p", s3_connect_timeout_s=2)
    with pytest.raises(TileUnreachable, match="EndpointConnectionError") as caught:
        read_tile(f"s3://tiles/p/ab/{ID}.png", ID, settings=s, timeout_s=2)
    assert not isinstance(caught.value, PERMANENT)
    with pytest.raises(TileUnreachable, match="cannot check tile"):
        open_tile_store(s, tmp_path).put(PNG, "png")


@pytest.mark.parametrize(("status", "code", "attempts"), [
    (503, "SlowDown", 2),  # throttling: botocore retries it (s3_max_attempts), then it is transient
    (500, "InternalError", 2),
    (403, "AccessDenied", 1),  # credentials get fixed: transient too, but not retried by botocore
])
def test_server_errors_throttling_and_denials_are_transient(status, code, attempts, tmp_path):
    with answering(status, code) as (url, seen):
        s = s3_settings(url, tile_store_url="s3://tiles/p")
        with pytest.raises(TileUnreachable, match=code) as caught:
            read_tile(f"s3://tiles/p/ab/{ID}.png", ID, settings=s)
        assert not isinstance(caught.value, PERMANENT)
        assert seen == [f"GET /tiles/p/ab/{ID}.png"] * attempts
        with pytest.raises(TileUnreachable, match=f"cannot check tile .*HTTP {status}"):
            open_tile_store(s, tmp_path).put(PNG, "png")


def test_uris_and_urls_the_store_does_not_hand_out_are_refused():
    s = s3_settings("http://127.0.0.1:9", tile_store_url="s3://tiles/p")  # nothing listens: nothing is asked
    for bad in ("gs://tiles/x.png", "s3:///x.png", "s3://tiles", "s3://tiles/", "tiles/x.png",
                f"s3://tiles/p/ab/{ID}.png?versionId=1", f"s3://other/p/ab/{ID}.png", f"s3://tiles/q/ab/{ID}.png",
                f"s3://tiles/p/x/ab/{ID}.png", f"s3://tiles/ab/{ID}.png", f"s3://tiles/p/../q/ab/{ID}.png"):
        with pytest.raises(UnsupportedTileUri):
            read_tile(bad, ID, settings=s)
    with pytest.raises(UnsupportedTileUri, match="no S3 tile store"):
        read_tile(f"s3://tiles/p/ab/{ID}.png", ID, settings=s3_settings("http://127.0.0.1:9"))
    for bad in ("gs://tiles/p", "s3://", "https://tiles/p", "s3://tiles/a b", "s3://tiles/p?versionId=1"):
        with pytest.raises(ValidationError, match="EMBERWATCH_TILE_STORE_URL"):
            Settings(tile_store_url=bad)
    assert Settings(s3_endpoint_url="", s3_region="").s3_endpoint_url is None  # empty means unset


def test_no_key_reaches_an_error_message_a_log_or_a_repr(s3_endpoint, bucket, caplog, tmp_path):
    texts: list[str] = []
    s = s3_settings(s3_endpoint, tile_store_url=f"s3://{bucket}/p")
    with caplog.at_level(logging.DEBUG, logger="botocore"):
        open_tile_store(s, tmp_path).put(PNG, "png")
        for uri, settings in ((f"s3://{bucket}/p/ab/{ID}.png", s),
                              (f"s3://tiles/ab/{ID}.png", s3_settings(f"http://127.0.0.1:{free_port()}",
                                                                      tile_store_url="s3://tiles"))):
            try:
                read_tile(uri, ID, settings=settings, timeout_s=2)
            except (TileMissing, TileUnreachable) as exc:
                texts.append("".join(traceback.format_exception(exc)))
    with answering(503, "SlowDown") as (url, _):
        try:
            read_tile(f"s3://tiles/ab/{ID}.png", ID, settings=s3_settings(url, tile_store_url="s3://tiles"))
        except TileUnreachable as exc:
            texts.append("".join(traceback.format_exception(exc)))
    try:
        S3Connection.from_settings(Settings(s3_access_key_id=ACCESS_KEY_ID))  # half the keys
    except ValueError as exc:
        texts.append("".join(traceback.format_exception(exc)))
    assert len(texts) == 4
    assert any("Credential=" in r.getMessage() for r in caplog.records)  # botocore logged signed requests
    texts += [JsonFormatter().format(r) for r in caplog.records]  # what a service's log would show
    texts += [repr(s), str(s.model_dump()), repr(S3Connection.from_settings(s))]
    for text in texts:
        assert ACCESS_KEY_ID not in text and SECRET_ACCESS_KEY not in text, text
