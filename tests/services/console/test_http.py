"""The console over real HTTP: bad input is refused clearly and publishes nothing; secrets stay out."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import httpx
import pytest

from emberwatch.contracts.events import LabelFeedback, ModelCommand
from tests.services.console.conftest import (
    MAPBOX_TOKEN,
    RunningConsole,
    console_process,
    read_all,
)


def page_client(url: str) -> httpx.Client:
    """A client whose requests look like the console's own pages' (Origin, Sec-Fetch-Site), as a
    browser sends them; the console refuses changes that do not."""
    return httpx.Client(base_url=url, timeout=10, headers={"Origin": url, "Sec-Fetch-Site": "same-origin"})


@contextlib.contextmanager
def signed_in(console: RunningConsole, name: str = "alice") -> Iterator[httpx.Client]:
    with page_client(console.url) as client:
        r = client.post("/api/signin", json={"secret": console.secrets[name]})
        assert r.status_code == 200 and r.json() == {"user": name}, r.text
        yield client


def test_health_and_metrics(console: RunningConsole) -> None:
    health = httpx.get(f"{console.url}/healthz").json()
    assert health["status"] == "ok" and health["fires"] == 3 and health["tiles"] == 3
    metrics = httpx.get(f"{console.url}/metrics")
    assert metrics.status_code == 200
    assert 'emberwatch_messages_consumed_total{outcome="ok",service="console",topic="fires.observed.v1"} 5.0' \
        in metrics.text


def test_active_fires_are_those_not_out(console: RunningConsole) -> None:
    fires = {f["fire_key"]: f for f in httpx.get(f"{console.url}/api/fires").json()["fires"]}
    assert set(fires) >= {"A", "B"} and "C" not in fires
    assert fires["B"]["stage"] == "UC" and fires["B"]["hectares"] == 40.0  # the latest change holds
    assert fires["A"]["start_date"] == "2026-06-28" and fires["A"]["source"] == "cwfis-csv"


def test_unknown_tile_id_is_a_clear_404(console: RunningConsole) -> None:
    for tile_id in ("0" * 64, "not-a-tile"):
        r = httpx.get(f"{console.url}/tiles/{tile_id}")
        assert r.status_code == 404
        assert "unknown tile id" in r.text


def test_known_tile_is_served_from_the_store(console: RunningConsole) -> None:
    t = console.tiles["fire"]
    r = httpx.get(f"{console.url}/tiles/{t.tile_id}")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    import hashlib
    assert hashlib.sha256(r.content).hexdigest() == t.tile_id


def test_writes_without_a_session_are_401_and_publish_nothing(console: RunningConsole) -> None:
    before_cmd = len(read_all(console.settings, ModelCommand.TOPIC))
    before_fb = len(read_all(console.settings, LabelFeedback.TOPIC))
    with page_client(console.url) as client:
        r = client.post("/api/commands", json={"command": "promote", "version": "3"})
        assert r.status_code == 401
        client.cookies.set("emberwatch_console", "forged-session")
        r = client.post("/api/feedback", json={"tile_id": console.tiles["fire"].tile_id, "label": "nowildfire"})
        assert r.status_code == 401
    assert len(read_all(console.settings, ModelCommand.TOPIC)) == before_cmd
    assert len(read_all(console.settings, LabelFeedback.TOPIC)) == before_fb


def test_wrong_secret_is_refused_and_no_secret_is_logged(console: RunningConsole) -> None:
    with page_client(console.url) as client:
        # a wrong secret for a real name, and bob's secret claiming to be alice: both refused
        wrong = console.secrets["bob"].replace("bob:", "alice:", 1)
        r = client.post("/api/signin", json={"secret": wrong})
        assert r.status_code == 401 and "set-cookie" not in r.headers
    with signed_in(console, "bob") as client:
        assert client.get("/api/me").json()["user"] == "bob"
    log = console.log_text()
    assert "console sign-in" in log  # the log is there and speaks of sign-ins ...
    assert all(secret not in log for secret in console.secrets.values())  # ... but never of the secrets
    assert wrong not in log and MAPBOX_TOKEN not in log


@pytest.mark.parametrize("body, status, says", [
    (b"{not json", 400, "not JSON"),
    (b"[1, 2]", 400, "JSON object"),
    (b'{"label": "wildfire"}', 422, "tile_id"),
    (b'{"tile_id": "abc", "label": "maybe"}', 422, "label"),
])
def test_malformed_feedback_is_refused(console: RunningConsole, body: bytes, status: int, says: str) -> None:
    with signed_in(console) as client:
        before = len(read_all(console.settings, LabelFeedback.TOPIC))
        r = client.post("/api/feedback", content=body, headers={"content-type": "application/json"})
        assert r.status_code == status and says in r.json()["error"]
        assert len(read_all(console.settings, LabelFeedback.TOPIC)) == before


def test_feedback_on_unknown_tile_is_404_and_publishes_nothing(console: RunningConsole) -> None:
    with signed_in(console) as client:
        before = len(read_all(console.settings, LabelFeedback.TOPIC))
        r = client.post("/api/feedback", json={"tile_id": "f" * 64, "label": "wildfire"})
        assert r.status_code == 404 and "unknown tile id" in r.json()["error"]
        assert len(read_all(console.settings, LabelFeedback.TOPIC)) == before


@pytest.mark.parametrize("body, says", [
    ({"command": "promote"}, "version"),
    ({"command": "explode"}, "command"),
    ({"command": "approve", "version": "v3; drop"}, "version"),
])
def test_malformed_commands_are_refused(console: RunningConsole, body: dict, says: str) -> None:
    with signed_in(console) as client:
        before = len(read_all(console.settings, ModelCommand.TOPIC))
        r = client.post("/api/commands", json=body)
        assert r.status_code == 422 and says in r.json()["error"]
        assert len(read_all(console.settings, ModelCommand.TOPIC)) == before


def test_basemap_goes_through_the_console_with_the_token_server_side(console: RunningConsole) -> None:
    with page_client(console.url) as client:
        r = client.get("/basemap/12/700/1300")
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
        assert r.content[:3] == b"\xff\xd8\xff"
        assert console.mapbox.tokens and console.mapbox.tokens[-1] == MAPBOX_TOKEN
        assert MAPBOX_TOKEN.encode() not in r.content and MAPBOX_TOKEN not in str(r.headers)
        assert client.get("/basemap/12/9000/2").status_code == 404  # outside the zoom's grid
    assert MAPBOX_TOKEN not in console.log_text()  # the proxy's requests log no token (DEBUG on)


def test_an_unanswered_command_id_is_404(console: RunningConsole) -> None:
    r = httpx.get(f"{console.url}/api/decisions/no-such-command")
    assert r.status_code == 404 and "no answer" in r.json()["error"]


def test_the_pages_and_leaflet_are_served_by_the_console(console: RunningConsole) -> None:
    for path, says in (("/", "leaflet.js"), ("/models", "decisions"), ("/vendor/leaflet/leaflet.js", "Leaflet")):
        r = httpx.get(f"{console.url}{path}")
        assert r.status_code == 200 and says in r.text
    page = httpx.get(f"{console.url}/").text
    assert "http://" not in page and "https://" not in page  # nothing from a CDN


def test_without_triton_or_gatekeeper_the_pages_say_so_and_keep_working(console: RunningConsole) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        fires = httpx.get(f"{console.url}/api/fires", timeout=5).json()
        if "Triton is not reachable" in fires["predictions"]:
            break
        time.sleep(0.3)
    assert "Triton is not reachable" in fires["predictions"], fires["predictions"]
    assert all(f["prediction"] is None for f in fires["fires"])
    models = httpx.get(f"{console.url}/api/models", timeout=10).json()
    assert models["gate"]["available"] is False and "is the gatekeeper running?" in models["gate"]["error"]
    assert models["roles"] == {"champion": None, "challenger": None, "previous": None}


@pytest.mark.parametrize("token", ["", None])
def test_without_operators_the_console_is_read_only(console: RunningConsole, tmp_path, monkeypatch,
                                                    token: str | None) -> None:
    """A second console on the same streams, with no operators file and the legacy token empty or
    unset: everything can be read, nobody can sign in, and no write publishes anything."""
    monkeypatch.delenv("EMBERWATCH_CONSOLE_OPERATOR_TOKEN", raising=False)
    extra = console.env | {"EMBERWATCH_CONSOLE_OPERATORS_FILE": str(tmp_path / "no-operators")}
    if token is not None:
        extra["EMBERWATCH_CONSOLE_OPERATOR_TOKEN"] = token
    before_cmd = len(read_all(console.settings, ModelCommand.TOPIC))
    before_fb = len(read_all(console.settings, LabelFeedback.TOPIC))
    with console_process(console.settings, tmp_path / "read-only.log", extra, fires=3, tiles=3) as url:
        with page_client(url) as client:
            assert client.get("/api/me").json()["signin_enabled"] is False
            assert client.get("/").status_code == 200
            assert {"A", "B"} <= {f["fire_key"] for f in client.get("/api/fires").json()["fires"]}
            tile_id = console.tiles["fire"].tile_id
            assert client.get(f"/tiles/{tile_id}").status_code == 200
            r = client.post("/api/signin", json={"secret": console.secrets["alice"]})
            assert r.status_code == 403 and "no operators" in r.json()["error"]
            assert "set-cookie" not in r.headers
            assert client.post("/api/commands", json={"command": "rollback"}).status_code == 401
            assert client.post("/api/feedback", json={"tile_id": tile_id, "label": "nowildfire"}).status_code == 401
    assert len(read_all(console.settings, ModelCommand.TOPIC)) == before_cmd
    assert len(read_all(console.settings, LabelFeedback.TOPIC)) == before_fb
    assert '"signin_enabled": false' in (tmp_path / "read-only.log").read_text()
