"""What every console response carries, and what every state-changing request must show.

``SecurityHeaders`` adds a strict Content-Security-Policy (scripts and styles only from the console's
own files, nothing inline, no framing), ``nosniff``, a referrer policy and ``X-Frame-Options`` to every
response, errors and static files included. ``WriteGuard`` lets a request other than GET/HEAD reach
the application only from the console's own pages (``Sec-Fetch-Site: same-origin`` when the browser
says, and an ``Origin`` equal to the console's), with ``Content-Type: application/json`` and a body no
larger than the limit: it reads the body itself, stops at the limit (413, the rest is never read) and
hands the application only what it read.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from prometheus_client import Counter
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    # same-origin: the console's own pages send a Referer to the console (the basemap proxy checks it),
    # nothing is sent to MLflow or anyone else
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
}
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

REFUSED = Counter("emberwatch_console_refused_requests_total",
                  "Console requests refused before they reached a route, by reason "
                  "(cross_site, origin, content_type, too_large).", ["reason"])


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                have = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []),
                                      *((k.encode(), v.encode()) for k, v in HEADERS.items() if k.encode() not in have)]
            await send(message)

        await self.app(scope, receive, with_headers)


def request_origin(scope: Scope, public_url: str | None) -> str:
    """The console's own origin for this request: the configured public URL, else the scheme and Host
    the request was addressed to (behind a trusted proxy, uvicorn has set the scheme)."""
    if public_url:
        return public_url
    host = Headers(scope=scope).get("host", "")
    return f"{scope.get('scheme', 'http')}://{host.lower()}"


def same_origin(scope: Scope, public_url: str | None) -> str | None:
    """None if the request comes from the console's own pages; else why not. A browser says where a
    request comes from (Sec-Fetch-Site, Origin); a request with neither is not from a browser page."""
    headers = Headers(scope=scope)
    site = headers.get("sec-fetch-site")
    if site is not None and site != "same-origin":
        return "cross_site"
    origin = headers.get("origin")
    if origin is None or origin != request_origin(scope, public_url):
        return "origin"
    return None


def is_json(content_type: str | None) -> bool:
    return (content_type or "").split(";")[0].strip().lower() == "application/json"


class WriteGuard:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, public_url: str | None) -> None:
        self.app, self.max_body_bytes, self.public_url = app, max_body_bytes, public_url

    @staticmethod
    async def _refuse(send: Send, status: int, reason: str, message: str) -> None:
        REFUSED.labels(reason).inc()
        body = json.dumps({"error": message}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        why = same_origin(scope, self.public_url)
        if why is not None:
            origin = urlsplit(headers.get("origin", "")).netloc or headers.get("origin", "none")
            await self._refuse(send, 403, why, "a change must come from the console's own pages "
                               f"(Origin {origin[:100]!r}, Sec-Fetch-Site {headers.get('sec-fetch-site', 'none')!r})")
            return
        if not is_json(headers.get("content-type")):
            await self._refuse(send, 415, "content_type", "the body must be sent as Content-Type: application/json")
            return
        limit = self.max_body_bytes
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await self._refuse(send, 413, "too_large", f"the body is larger than {limit} bytes")
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:  # a chunked body: stop reading at the limit
                await self._refuse(send, 413, "too_large", f"the body is larger than {limit} bytes")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body, replayed = b"".join(chunks), False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
