"""Read a tile's bytes from the tile store by its URI (file://, a plain path, or http(s)://)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

import httpx


class TileUnavailable(RuntimeError):
    """The tile cannot be read (missing file, unsupported scheme, HTTP error)."""


def read_tile(uri: str, *, timeout_s: float = 30.0) -> bytes:
    parsed = urlparse(uri)
    try:
        if parsed.scheme in ("", "file"):
            return Path(unquote(parsed.path) if parsed.scheme else uri).read_bytes()
        if parsed.scheme in ("http", "https"):
            response = httpx.get(uri, timeout=timeout_s, follow_redirects=True)
            response.raise_for_status()
            return response.content
    except (OSError, httpx.HTTPError) as exc:
        raise TileUnavailable(f"cannot read tile {uri}: {type(exc).__name__}: {exc}") from exc
    raise TileUnavailable(f"unsupported tile uri scheme {parsed.scheme!r}: {uri}")
