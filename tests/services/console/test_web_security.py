"""The console's security headers, write guard, sessions and sign-in throttle, on a small ASGI app (the
real console over real HTTP and Chromium: tests/security/test_console_security.py)."""

from __future__ import annotations

import asyncio

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from services.console.sessions import Sessions, SignInThrottle
from services.console.web_security import CSP, SecurityHeaders, WriteGuard

ORIGIN = "http://console.test"


def _app(public_url: str | None = None, seen: list[bytes] | None = None) -> Starlette:
    async def echo(request: Request) -> JSONResponse:
        body = await request.body()
        if seen is not None:
            seen.append(body)
        return JSONResponse({"read": len(body)})

    async def page(request: Request) -> PlainTextResponse:
        return PlainTextResponse("page")

    return Starlette(routes=[Route("/echo", echo, methods=["POST"]), Route("/", page)], middleware=[
        Middleware(SecurityHeaders), Middleware(WriteGuard, max_body_bytes=1024, public_url=public_url)])


def _call(app: Starlette, method: str, path: str, **kwargs) -> httpx.Response:  # noqa: ANN003
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ORIGIN) as client:
            return await client.request(method, path, **kwargs)
    return asyncio.run(go())


def _page(**extra: str) -> dict[str, str]:
    return {"Origin": ORIGIN, "Sec-Fetch-Site": "same-origin", "Content-Type": "application/json", **extra}


def test_every_answer_carries_the_headers() -> None:
    for method, path in (("GET", "/"), ("GET", "/nowhere"), ("POST", "/echo")):
        r = _call(_app(), method, path)
        assert r.headers["content-security-policy"] == CSP, (method, path)
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "same-origin"
    assert "script-src 'self';" in CSP and "frame-ancestors 'none'" in CSP and "unsafe" not in CSP


def test_a_write_from_the_pages_goes_through() -> None:
    seen: list[bytes] = []
    r = _call(_app(seen=seen), "POST", "/echo", content=b'{"a": 1}', headers=_page())
    assert r.status_code == 200 and seen == [b'{"a": 1}']


def test_writes_from_elsewhere_are_refused_before_the_route() -> None:
    seen: list[bytes] = []
    app = _app(seen=seen)
    for headers, status in (
        (_page(Origin="http://evil.example"), 403),
        (_page(Origin="null"), 403),
        (_page(**{"Sec-Fetch-Site": "cross-site"}), 403),
        (_page(**{"Sec-Fetch-Site": "same-site"}), 403),
        ({"Content-Type": "application/json"}, 403),  # no Origin: not from a page
        (_page(**{"Content-Type": "text/plain"}), 415),
        (_page(**{"Content-Type": "application/x-www-form-urlencoded"}), 415),
        (_page(**{"Content-Type": "multipart/form-data; boundary=x"}), 415),
    ):
        r = _call(app, "POST", "/echo", content=b"{}", headers=headers)
        assert r.status_code == status, (headers, r.text)
        assert "error" in r.json()
    assert seen == []


def test_the_public_url_is_the_only_origin_behind_a_proxy() -> None:
    app = _app(public_url="https://console.example.org")
    assert _call(app, "POST", "/echo", content=b"{}", headers=_page()).status_code == 403
    r = _call(app, "POST", "/echo", content=b"{}", headers=_page(Origin="https://console.example.org"))
    assert r.status_code == 200


def test_a_big_body_is_413_and_the_route_never_sees_it() -> None:
    seen: list[bytes] = []
    app = _app(seen=seen)
    r = _call(app, "POST", "/echo", content=b"x" * 1025, headers=_page())
    assert r.status_code == 413

    chunks_sent = 0

    async def endless():  # noqa: ANN202 - a chunked body with no end: only a limit stops it
        nonlocal chunks_sent
        while True:
            chunks_sent += 1
            yield b"y" * 100

    r = _call(app, "POST", "/echo", content=endless(), headers=_page())
    assert r.status_code == 413 and seen == []
    assert chunks_sent <= 12  # stopped at the limit (1 KiB), not at the end of the body (there is none)
    assert _call(app, "POST", "/echo", content=b"{}", headers=_page(**{"Content-Length": "abc"})).status_code in (400, 413)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_sessions_expire_and_end_with_their_operator() -> None:
    clock, operators = Clock(), {"alice", "bob"}
    sessions = Sessions(60, lambda name: name in operators, clock)
    a, b = sessions.start("alice"), sessions.start("bob")
    assert a != b and len(a) >= 40
    assert sessions.operator(a) == "alice" and sessions.operator("forged") is None
    operators.discard("bob")  # removed from the operators file
    assert sessions.operator(b) is None
    clock.now += 61
    assert sessions.operator(a) is None
    c = sessions.start("alice")
    sessions.end(c)
    assert sessions.operator(c) is None


def test_failed_sign_ins_are_throttled_per_client_for_a_minute() -> None:
    clock = Clock()
    throttle = SignInThrottle(3, clock=clock)
    for _ in range(3):
        assert throttle.retry_after("10.0.0.1") is None
        throttle.failed("10.0.0.1")
        clock.now += 1
    assert throttle.retry_after("10.0.0.1") == 57  # the first failure (3 s ago) leaves the window in 57 s
    assert throttle.retry_after("10.0.0.2") is None  # another client is not held back
    clock.now += 57
    assert throttle.retry_after("10.0.0.1") is None
