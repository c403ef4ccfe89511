"""The basemap proxy against the real Mapbox simulator over HTTP: the console adds the token server
side, the browser never sees it; a wrong token is the provider's refusal, not an image."""

from __future__ import annotations

import asyncio

import httpx
from pydantic import SecretStr
from starlette.applications import Starlette

from services.console.main import build_app
from services.console.settings import ConsoleSettings
from simulators.mapbox.app import SimState, create_app
from tests.support.serve_app import serve_in_thread

TOKEN = "pk.console-basemap-test"


async def _get(app: Starlette, path: str) -> httpx.Response:
    (r,) = await _many(app, [(path, {"Sec-Fetch-Site": "same-origin"})])  # as the map's <img>s
    return r


def test_basemap_tiles_come_from_the_simulator_through_the_console(tmp_path) -> None:
    with serve_in_thread(create_app(SimState(tokens={TOKEN})), "mapbox simulator") as sim_url:
        good = build_app(ConsoleSettings(state_dir=tmp_path, mapbox_api_url=sim_url, mapbox_token=SecretStr(TOKEN)))
        r = asyncio.run(_get(good, "/basemap/12/700/1300"))
        assert r.status_code == 200, r.text
        assert r.content[:3] == b"\xff\xd8\xff" and TOKEN.encode() not in r.content
        bad = build_app(ConsoleSettings(state_dir=tmp_path, mapbox_api_url=sim_url,
                                      mapbox_token=SecretStr("pk.wrong")))
        r = asyncio.run(_get(bad, "/basemap/12/700/1300"))
        assert r.status_code == 502 and "answered 401" in r.text and "pk.wrong" not in r.text


def _upstream(calls: list[str], body: bytes, content_type: str):  # noqa: ANN202
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def raster(request: Request) -> Response:
        calls.append(request.url.path)
        return Response(body, media_type=content_type)

    return Starlette(routes=[Route("/v4/{tileset}/{z:int}/{x:int}/{tail}", raster)])


async def _many(app: Starlette, requests: list[tuple[str, dict[str, str]]]) -> list[httpx.Response]:
    console = app.state.console
    console.http = httpx.AsyncClient(timeout=30)  # what the lifespan opens (no broker needed here)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://console") as client:
            return [await client.get(path, headers=headers) for path, headers in requests]
    finally:
        await console.http.aclose()


PAGE = {"Sec-Fetch-Site": "same-origin"}


def test_the_proxy_answers_only_the_pages_only_images_and_spends_the_token_once_per_tile(tmp_path) -> None:
    import io

    from PIL import Image

    png = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(png, format="PNG")
    calls: list[str] = []
    # an upstream that labels a PNG as HTML: the console names it from the bytes, with nosniff
    with serve_in_thread(_upstream(calls, png.getvalue(), "text/html"), "upstream") as url:
        app = build_app(ConsoleSettings(state_dir=tmp_path, mapbox_api_url=url, mapbox_token=SecretStr(TOKEN),
                                          console_basemap_requests_per_minute=4))
        answers = asyncio.run(_many(app, [
            ("/basemap/12/700/1300", PAGE),
            ("/basemap/12/700/1300", PAGE),  # the cache: upstream asked once
            ("/basemap/12/700/1300", {"Sec-Fetch-Site": "cross-site"}),  # another site's page
            ("/basemap/12/700/1300", {"Referer": "http://evil.example/map"}),  # a browser without Sec-Fetch-*
            ("/basemap/12/700/1300", {}),  # a script with neither
            ("/basemap/12/700/1300", {"Referer": "http://console/"}),  # the console's page, older browser
            ("/basemap/3/1/2", PAGE),  # below the map's basemap zoom: not a tile the map asks for
            ("/basemap/19/1/2", PAGE),  # above the map's zoom
            ("/basemap/12/700/1301", PAGE),
            ("/basemap/12/700/1302", PAGE),  # the fifth tile from this client this minute: 429
        ]))
    codes = [r.status_code for r in answers]
    assert codes == [200, 200, 403, 403, 403, 200, 404, 404, 200, 429], codes
    for r in answers[:2]:
        assert r.headers["content-type"] == "image/png" and r.headers["x-content-type-options"] == "nosniff"
    assert int(answers[-1].headers["retry-after"]) >= 1
    assert calls == ["/v4/mapbox.satellite/12/700/1300@2x.jpg90", "/v4/mapbox.satellite/12/700/1301@2x.jpg90"]


def test_anything_but_an_image_from_upstream_is_refused(tmp_path) -> None:
    calls: list[str] = []
    html = b"<html><script>alert(1)</script></html>"
    with serve_in_thread(_upstream(calls, html, "image/jpeg"), "upstream") as url:
        app = build_app(ConsoleSettings(state_dir=tmp_path, mapbox_api_url=url, mapbox_token=SecretStr(TOKEN)))
        (r,) = asyncio.run(_many(app, [("/basemap/12/700/1300", PAGE)]))
    assert r.status_code == 502 and b"script" not in r.content and calls
