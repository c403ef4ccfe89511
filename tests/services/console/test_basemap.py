"""The basemap proxy against the real Mapbox simulator over HTTP: the console adds the token server
side, the browser never sees it; a wrong token is the provider's refusal, not an image."""

from __future__ import annotations

import asyncio

import httpx
from pydantic import SecretStr

from services.console.main import Console
from services.console.settings import ConsoleSettings
from simulators.mapbox.app import SimState, create_app
from tests.support.serve_app import serve_in_thread

TOKEN = "pk.console-basemap-test"


async def _get(console: Console, path: str) -> httpx.Response:
    console._http = httpx.AsyncClient(timeout=30)  # what the lifespan sets (no broker needed here)
    try:
        transport = httpx.ASGITransport(app=console.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://console") as client:
            return await client.get(path)
    finally:
        await console._http.aclose()


def test_basemap_tiles_come_from_the_simulator_through_the_console(tmp_path) -> None:
    with serve_in_thread(create_app(SimState(tokens={TOKEN})), "mapbox simulator") as sim_url:
        good = Console(ConsoleSettings(state_dir=tmp_path, mapbox_api_url=sim_url, mapbox_token=SecretStr(TOKEN)))
        r = asyncio.run(_get(good, "/basemap/12/700/1300"))
        assert r.status_code == 200, r.text
        assert r.content[:3] == b"\xff\xd8\xff" and TOKEN.encode() not in r.content
        bad = Console(ConsoleSettings(state_dir=tmp_path, mapbox_api_url=sim_url,
                                      mapbox_token=SecretStr("pk.wrong")))
        r = asyncio.run(_get(bad, "/basemap/12/700/1300"))
        assert r.status_code == 502 and "answered 401" in r.text and "pk.wrong" not in r.text
