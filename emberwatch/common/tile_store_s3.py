"""The tile store's S3 backend: the same content addressing as the local directory, in a bucket, so
that a tile written on one node is read on any other (``emberwatch/common/tile_store_contract.py`` has the
contract).

A tile is the object ``<prefix>/<id[:2]>/<id>.<ext>`` of the bucket in ``EMBERWATCH_TILE_STORE_URL``
and its URI is ``s3://<bucket>/<key>``. An S3 PUT is atomic (a reader gets the whole object or a
404), so no temp-and-rename is needed. A put asks first (HEAD: the same bytes again cost no upload)
and then writes with ``If-None-Match: *``, so two tiler replicas storing the same bytes at once
write one object and only one of them reports it ``created``.

boto3 does the signing, the retries (botocore's standard mode: connection errors, 5xx, throttling,
with jittered backoff, ``EMBERWATCH_S3_MAX_ATTEMPTS``) and the timeouts. One client per connection
settings is built once and shared: boto3 clients are thread-safe (the readers call from worker
threads), sessions are not, so each client is built from its own session.

Errors follow the contract's types: 404 (``NoSuchKey``, ``NoSuchBucket``) is ``TileMissing``;
everything else (refused connections, timeouts, 5xx, ``SlowDown``, 403) is ``TileUnreachable``, as
for HTTP tiles. A 403 is not permanent because credentials get fixed or rotated; S3 also answers a
missing key with 403 when the reader may not list the bucket, so readers need ``s3:ListBucket`` for
missing tiles to be recognised as missing.

The credentials are ``SecretStr`` until the client is built. Error messages are built from the error
code, the HTTP status and botocore's own text with the configured keys scrubbed out, and the
botocore exception is not chained, so no traceback in a log carries a request.
"""

from __future__ import annotations

import functools
import hashlib
import mimetypes
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import SecretStr

from emberwatch.common.config import Settings
from emberwatch.common.tile_store_contract import (
    StoredObject,
    StoredTile,
    TileMissing,
    TileUnreachable,
    check_extension,
    key_for,
    parse_tile_name,
)

MISSING_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "NotFound", "404"})
MAX_POOL_CONNECTIONS = 32  # the tiler's concurrent puts and the gatekeeper's threads share one client


@dataclass(frozen=True)
class S3Connection:
    """Where and how to reach S3: hashable, so equal settings share one client; the keys print as
    ``**********``."""

    endpoint_url: str | None
    region: str | None
    access_key_id: SecretStr | None
    secret_access_key: SecretStr | None
    connect_timeout_s: float
    read_timeout_s: float
    max_attempts: int

    @classmethod
    def from_settings(cls, settings: Settings, *, read_timeout_s: float | None = None) -> S3Connection:
        if (settings.s3_access_key_id is None) != (settings.s3_secret_access_key is None):
            raise ValueError("EMBERWATCH_S3_ACCESS_KEY_ID and EMBERWATCH_S3_SECRET_ACCESS_KEY are set "
                             "together (or neither, for boto3's default credential chain)")
        return cls(endpoint_url=settings.s3_endpoint_url, region=settings.s3_region,
                   access_key_id=settings.s3_access_key_id,
                   secret_access_key=settings.s3_secret_access_key,
                   connect_timeout_s=settings.s3_connect_timeout_s,
                   read_timeout_s=read_timeout_s or settings.s3_read_timeout_s,
                   max_attempts=settings.s3_max_attempts)

    def scrub(self, text: str) -> str:
        """``text`` without the configured keys (botocore's messages should not hold them; this makes sure)."""
        for secret in (self.access_key_id, self.secret_access_key):
            if secret is not None and secret.get_secret_value():
                text = text.replace(secret.get_secret_value(), "***")
        return text


_clients: dict[S3Connection, BaseClient] = {}  # a handful at most: one per distinct timeout in use
_clients_lock = threading.Lock()


def s3_client(connection: S3Connection) -> BaseClient:
    """The one client for ``connection``, built on first use."""
    with _clients_lock:
        client = _clients.get(connection)
        if client is None:
            client = _clients[connection] = _build_client(connection)
        return client


def _build_client(c: S3Connection) -> BaseClient:
    keys = {}
    if c.access_key_id is not None and c.secret_access_key is not None:
        keys = {"aws_access_key_id": c.access_key_id.get_secret_value(),
                "aws_secret_access_key": c.secret_access_key.get_secret_value()}
    config = Config(connect_timeout=c.connect_timeout_s, read_timeout=c.read_timeout_s,
                    retries={"mode": "standard", "total_max_attempts": c.max_attempts},
                    max_pool_connections=MAX_POOL_CONNECTIONS)
    return boto3.session.Session().client("s3", endpoint_url=c.endpoint_url, region_name=c.region,
                                          config=config, **keys)


def _error(exc: ClientError) -> tuple[str, int]:
    """(error code, HTTP status) of an S3 error answer."""
    code = str(exc.response.get("Error", {}).get("Code", "unknown"))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return code, status


@contextmanager
def _classified(action: str, uri: str, connection: S3Connection, *, missing: bool = False) -> Iterator[None]:
    """botocore's errors as the contract's; with ``missing``, a 404 means the tile does not exist.
    Not chained (``from None``): the message says what happened, and nothing of the request is kept."""
    try:
        yield
    except ClientError as exc:
        code, status = _error(exc)
        if missing and (code in MISSING_CODES or status in (404, 410)):
            raise TileMissing(f"tile {uri} does not exist ({code})") from None
        raise TileUnreachable(f"cannot {action} tile {uri}: {code} (HTTP {status})") from None
    except BotoCoreError as exc:
        raise TileUnreachable(f"cannot {action} tile {uri}: {type(exc).__name__}: "
                              f"{connection.scrub(str(exc))}") from None


class S3TileStore:
    """The tiler's side of the contract in a bucket: ``put`` stores bytes under their sha256."""

    def __init__(self, bucket: str, prefix: str, connection: S3Connection) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.connection = connection

    def key_for(self, tile_id: str, ext: str) -> str:
        return key_for(self.prefix, tile_id, ext)

    def put(self, data: bytes, ext: str) -> StoredTile:
        """Store ``data`` under its sha256; a second put of the same bytes writes nothing."""
        check_extension(ext)
        tile_id = hashlib.sha256(data).hexdigest()
        key = self.key_for(tile_id, ext)
        uri = f"s3://{self.bucket}/{key}"
        created = not self._exists(key, uri) and self._upload(key, data, ext, uri)
        return StoredTile(tile_id, None, uri, created)

    def list_stored(self) -> Iterator[StoredObject]:
        prefix = f"{self.prefix}/" if self.prefix else ""
        uri = f"s3://{self.bucket}/{prefix}"
        with _classified("list", uri, self.connection):
            pages = s3_client(self.connection).get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix)
            for page in pages:
                for obj in page.get("Contents", []):
                    shard, _, name = obj["Key"][len(prefix):].partition("/")
                    parsed = parse_tile_name(name)
                    if parsed is None or parsed[0][:2] != shard:
                        continue
                    yield StoredObject(parsed[0], parsed[1], obj["LastModified"].timestamp(), int(obj["Size"]))

    def delete(self, tile_id: str, ext: str) -> None:
        key = self.key_for(tile_id, ext)
        with _classified("delete", f"s3://{self.bucket}/{key}", self.connection):
            s3_client(self.connection).delete_object(Bucket=self.bucket, Key=key)

    def _exists(self, key: str, uri: str) -> bool:
        with _classified("check", uri, self.connection):
            try:
                s3_client(self.connection).head_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if _error(exc)[1] == 404:
                    return False
                raise
        return True

    def _upload(self, key: str, data: bytes, ext: str, uri: str) -> bool:
        """True when this call wrote the object; False when another writer stored it since the HEAD."""
        put = functools.partial(s3_client(self.connection).put_object, Bucket=self.bucket, Key=key, Body=data,
                                ContentType=mimetypes.types_map.get(f".{ext}", "application/octet-stream"))
        with _classified("store", uri, self.connection):
            try:
                put(IfNoneMatch="*")
            except ClientError as exc:
                code, status = _error(exc)
                if status == 412:  # PreconditionFailed: the same bytes are there already
                    return False
                if code != "NotImplemented":
                    raise
                put()  # a server without conditional writes: at worst the same bytes written twice
        return True


def read_s3_tile(bucket: str, key: str, connection: S3Connection, *, max_bytes: int) -> bytes | None:
    """The bytes of object ``key`` of ``bucket`` (the caller has checked they are the store's); None
    when the object is larger than ``max_bytes`` (the body is then not read)."""
    uri = f"s3://{bucket}/{key}"
    with _classified("fetch", uri, connection, missing=True):
        answer = s3_client(connection).get_object(Bucket=bucket, Key=key)
        body = answer["Body"]
        try:
            if int(answer.get("ContentLength") or 0) > max_bytes:
                return None
            data = body.read(max_bytes + 1)  # botocore checks the length: a cut-off body raises
        finally:
            body.close()
    return data if len(data) <= max_bytes else None
