"""What a tile URI must look like, checked without any configuration (the contract's half of the tile
store's rule; ``emberwatch.common.tile_store`` checks the rest against the configured store).

A tile is stored under ``<id[:2]>/<id>.<ext>`` and announced as ``file:///<root>/<id[:2]>/<id>.<ext>``
(a local store) or ``s3://<bucket>/<prefix>/<id[:2]>/<id>.<ext>`` (S3). Accepted here: those two
schemes only; no host on a ``file://`` URI, a valid bucket name on an ``s3://`` one; no user, port,
query or fragment; ASCII without spaces or control characters; no ``.``/``..``/empty segment, before
or after percent-decoding, and no encoded separator or ``%`` (double encoding); the last two segments
exactly ``<id[:2]>`` and ``<id>.<ext>`` with ``ext`` in ``TILE_EXTENSIONS``. A refusal says why in
``reason`` (a short label, also used by the readers' metric).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

TILE_EXTENSIONS = frozenset({"jpg", "jpeg", "png", "webp", "gif"})  # what the tiler stores
MAX_TILE_URI_CHARS = 2048
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_URI = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*)://(?P<authority>[^/?#]*)(?P<path>/[^?#]*)?")
# One scan each, not a loop per character: this runs for every TileReady a consumer validates.
_SPACE_CONTROL_OR_BACKSLASH = re.compile(r"[\x00-\x20\x7f\\]")
_SEPARATOR_PERCENT_OR_NUL = re.compile(r"[/\\%\x00]")
# The shape a tile store hands out, in one match without backtracking: segments of unreserved
# characters that cannot be empty, "." or ".." (none starts with a dot) and need no decoding. Such a
# URI passes every check below once its last two segments name the tile; any other takes them all.
_PLAIN = re.compile(rf"(?:file://|s3://(?P<bucket>{_BUCKET.pattern}))(?P<path>(?:/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)+)")


class TileUriRefused(ValueError):
    """A tile URI that is not one a tile store hands out; ``reason`` is a short label."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class TileUri:
    scheme: str  # "file" or "s3"
    bucket: str | None  # s3 only
    path: str  # file: the decoded absolute path; s3: the key (no leading slash)
    ext: str


def _shown(uri: str) -> str:
    """How a refused URI appears in its error (cut, quoted): built only for a refusal."""
    return repr(uri[:200])


def _names_tile(uri: str, tile_id: str) -> str | None:
    """The extension when ``uri`` ends in ``/<id[:2]>/<id>.<ext>`` with a tile extension, else ``None``."""
    head, _, name = uri.rpartition("/")
    stem, _, ext = name.partition(".")
    if stem != tile_id or ext not in TILE_EXTENSIONS or not head.endswith("/" + tile_id[:2]):
        return None
    return ext


def _plain(uri: str, tile_id: str) -> TileUri | None:
    """``uri``'s parts if it has the plain shape (``_PLAIN``) and names ``tile_id``, else ``None``."""
    ext = _names_tile(uri, tile_id)
    if ext is None:
        return None
    m = _PLAIN.fullmatch(uri)
    if m is None:
        return None
    bucket = m["bucket"]
    return TileUri("file", None, m["path"], ext) if bucket is None else TileUri("s3", bucket, m["path"][1:], ext)


def check_tile_uri(uri: str, tile_id: str) -> None:
    """``parse_tile_uri`` without building the parts (what an event's validator needs): the plain
    shape is accepted in one match; any other URI takes every check and may raise ``TileUriRefused``."""
    if (isinstance(uri, str) and len(uri) <= MAX_TILE_URI_CHARS and _names_tile(uri, tile_id) is not None
            and _PLAIN.fullmatch(uri) is not None):
        return
    parse_tile_uri(uri, tile_id)


def parse_tile_uri(uri: str, tile_id: str) -> TileUri:
    """The parts of ``uri`` if it has the shape of ``tile_id``'s URI in a tile store, else ``TileUriRefused``."""
    if not isinstance(uri, str) or len(uri) > MAX_TILE_URI_CHARS:
        raise TileUriRefused("length", f"tile uri longer than {MAX_TILE_URI_CHARS} characters")
    plain = _plain(uri, tile_id)
    if plain is not None:
        return plain
    if not uri.isascii() or _SPACE_CONTROL_OR_BACKSLASH.search(uri):
        raise TileUriRefused("encoding", f"tile uri with spaces, control characters or backslashes: {_shown(uri)}")
    if "?" in uri or "#" in uri:
        raise TileUriRefused("query", f"tile uri with a query or fragment: {_shown(uri)}")
    m = _URI.fullmatch(uri)
    if m is None or m["scheme"] not in ("file", "s3"):
        scheme = uri.partition(":")[0] if ":" in uri else "(none)"
        raise TileUriRefused("scheme", f"tile uri scheme must be file or s3, got {scheme[:20]!r}")
    scheme, authority, raw_path = m["scheme"], m["authority"], m["path"] or ""
    if scheme == "file" and authority:
        raise TileUriRefused("host", f"a file:// tile uri names no host: {_shown(uri)}")
    if scheme == "s3" and not _BUCKET.fullmatch(authority):
        raise TileUriRefused("host", f"an s3:// tile uri names a bucket (no user or port): {_shown(uri)}")
    segments = raw_path.split("/")[1:]
    decoded = []
    for raw in segments:
        try:
            part = unquote(raw, errors="strict") if "%" in raw else raw
        except UnicodeDecodeError:
            raise TileUriRefused("encoding", f"tile uri with invalid percent-encoding: {_shown(uri)}") from None
        if not part or part in (".", "..") or raw in (".", ".."):
            raise TileUriRefused("traversal", f"tile uri with an empty, '.' or '..' segment: {_shown(uri)}")
        if _SEPARATOR_PERCENT_OR_NUL.search(part) or not part.isprintable():
            raise TileUriRefused("encoding", f"tile uri with an encoded separator or double encoding: {_shown(uri)}")
        decoded.append(part)
    if len(segments) < 2 or "%" in segments[-1] or "%" in segments[-2]:
        raise TileUriRefused("name", f"tile uri must end in {tile_id[:2]}/{tile_id}.<ext>: {_shown(uri)}")
    stem, dot, ext = segments[-1].partition(".")
    if segments[-2] != tile_id[:2] or stem != tile_id or not dot or ext not in TILE_EXTENSIONS:
        raise TileUriRefused("name", f"tile uri must end in {tile_id[:2]}/{tile_id}.<ext> "
                                     f"(ext one of {', '.join(sorted(TILE_EXTENSIONS))}): {_shown(uri)}")
    if scheme == "file":
        return TileUri("file", None, "/" + "/".join(decoded), ext)
    return TileUri("s3", authority, "/".join(segments), ext)
