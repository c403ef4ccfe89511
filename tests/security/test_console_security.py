"""The operator console as an adversary meets it: the real console process, a real broker (Tansu) and
Debian's Chromium driven by playwright.

- Hostile strings in every event text field the console shows are shown as text and run nothing (in
  the browser: no script ran, no element grew an event handler, no CSP violation, no command sent).
- Every response has a strict CSP, and an inline script is blocked by it.
- Cross-origin, non-JSON and oversized writes are refused before anything is read or published.
- Sign-in takes a named operator's own secret, is throttled per client, and names the operator in
  ``requested_by``; a wrong secret, another operator's name or a removed operator is refused.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from emberwatch.common.config import Settings
from emberwatch.common.telemetry import free_port
from emberwatch.common.tile_store import TileStore
from emberwatch.contracts import FireObserved, ModelDecision
from emberwatch.contracts.events import LabelFeedback, ModelCandidate, ModelCommand, SplitCounts
from emberwatch.operations.create_topics import create_topics
from emberwatch.security.console_operators import OperatorRegistry
from tests.conftest import running_stack
from tests.services.console.conftest import (  # noqa: F401 - browser is a fixture
    browser,
    console_process,
    make_operators,
    png,
    publish,
    read_all,
    run_async,
    tile,
)

MODEL = "emberwatch-resnet50"
# Each would run script if it reached the page as HTML (or as a link): it marks window.pwned, and the
# first tries to roll back the model as the signed-in operator.
PAYLOADS = (
    "<img src=x onerror=\"window.pwned='img';fetch('/api/commands',{method:'POST',"
    "headers:{'Content-Type':'application/json'},body:'{\\\"command\\\":\\\"rollback\\\"}'})\">",
    "<script>window.pwned='script'</script>",
    "\"><svg onload=\"window.pwned='svg'\">",
    "javascript:window.pwned='link'",
)


def hostile(field: str, i: int = 0) -> str:
    return f"{field} {PAYLOADS[i % len(PAYLOADS)]}"


@dataclass
class Console:
    url: str
    settings: Settings
    secrets: dict[str, str]
    operators: Path
    env: dict[str, str]
    tile_id: str


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    base = tmp_path_factory.mktemp("console-security")
    with running_stack(base / "stack", "kafka") as settings:
        run_async(lambda: create_topics(settings))
        try:  # the console signs its commands (emberwatch/security): a key for it, trusted locally
            from emberwatch.security.command_keys import CONSOLE, ensure_local_keys

            ensure_local_keys(settings, [CONSOLE])
        except ImportError:
            pass
        store = TileStore(settings.tile_root)
        fire_tile = tile(store, png((200, 60, 20)), "X", "wildfire")
        t0 = datetime(2026, 7, 1, 12, tzinfo=UTC)
        publish(settings,
                FireObserved.create(
                    producer="test", fire_key="X", source="cwfis-csv", agency=hostile("agency", 1),
                    name=hostile("name", 0), lat=50.0, lon=-120.0, start_date=t0, hectares=12.0,
                    stage_of_control=hostile("stage", 2), response_type=hostile("response", 3), change="new",
                    snapshot_at=t0),
                fire_tile,
                LabelFeedback.create(producer="test", tile_id=fire_tile.tile_id, label="nowildfire",
                                     labelled_by=hostile("by", 2), note=hostile("note", 0), previous_label="wildfire"),
                ModelCandidate.create(
                    producer="test", model_name=MODEL, version="5", run_id=hostile("run", 3),
                    artifact_uri="models:/m/5", dataset_digest="sha256:test",
                    counts={"train": SplitCounts(wildfire=3, nowildfire=3)}, metrics={"val_accuracy": 0.9}),
                ModelDecision.create(
                    producer="test", model_name=MODEL, candidate_version="5", champion_version=None,
                    decision="promoted", reason=hostile("reason", 1), basis="floor",
                    requested_by=hostile("requested_by", 2), warnings=[hostile("warning", 0), hostile("warning", 3)],
                    evidence={"n": 10}, occurred_at=t0),
                ModelDecision.create(
                    producer="test", model_name=hostile("model", 0), candidate_version=hostile("version", 0),
                    champion_version="5", decision="promoted", reason=hostile("reason", 0), basis="operator",
                    requested_by=hostile("requested_by", 0), evidence={"n": 11},
                    occurred_at=datetime(2026, 7, 2, tzinfo=UTC)))
        secrets = make_operators(base / "operators", ("alice", "bob", "carol"))
        env = {"EMBERWATCH_CONSOLE_OPERATORS_FILE": str(base / "operators"), "EMBERWATCH_CONSOLE_MODEL_NAME": MODEL,
               "EMBERWATCH_CONSOLE_PREDICTIONS": "false", "EMBERWATCH_CONSOLE_MAX_BODY_BYTES": "65536",
               "EMBERWATCH_MAPBOX_API_URL": f"http://127.0.0.1:{free_port()}",
               "EMBERWATCH_CONSOLE_GATEKEEPER_METRICS_URL": f"http://127.0.0.1:{free_port()}/metrics"}
        with console_process(settings, base / "console.log", env, fires=1, tiles=1) as url:
            yield Console(url, settings, secrets, base / "operators", env, fire_tile.tile_id)


def page_client(url: str, origin: str | None = None) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=15,
                        headers={"Origin": origin or url, "Sec-Fetch-Site": "same-origin"})


@contextlib.contextmanager
def signed_in(c: Console, name: str) -> Iterator[httpx.Client]:
    with page_client(c.url) as client:
        r = client.post("/api/signin", json={"secret": c.secrets[name]})
        assert r.status_code == 200 and r.json() == {"user": name}, r.text
        yield client


def counts(settings: Settings) -> tuple[int, int]:
    return len(read_all(settings, ModelCommand.TOPIC)), len(read_all(settings, LabelFeedback.TOPIC))


# --- in the browser ------------------------------------------------------------------------------
WATCH = """
window.__violations = [];
document.addEventListener('securitypolicyviolation',
  (e) => window.__violations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sample}`));
"""
# elements that could run script: an on* attribute, an inline <script>, a javascript: link, an <svg>
# or <img> that came from event text (Leaflet's own attribution flag is an <svg> without handlers)
DANGER = """() => {
  const handlers = [...document.querySelectorAll('*')].filter(e => [...e.attributes].some(a => /^on/i.test(a.name)));
  const inline = [...document.querySelectorAll('script')].filter(s => !s.src);
  const links = [...document.querySelectorAll('a[href]')].filter(a => /^\\s*javascript:/i.test(a.getAttribute('href')));
  const injected = [...document.querySelectorAll('img[src="x"], svg[onload]')];
  return {handlers: handlers.length, inline: inline.length, links: links.length, injected: injected.length,
          pwned: window.pwned ?? null, violations: window.__violations};
}"""
CLEAN = {"handlers": 0, "inline": 0, "links": 0, "injected": 0, "pwned": None, "violations": []}


@pytest.fixture
def page(browser, console: Console):  # noqa: ANN001, ANN201, F811
    context = browser.new_context(base_url=console.url, viewport={"width": 1280, "height": 900})
    context.add_init_script(WATCH)
    pg = context.new_page()
    try:
        yield pg
    finally:
        context.close()


def sign_in(page, console: Console, name: str) -> None:  # noqa: ANN001
    page.fill("#signin-secret", console.secrets[name])
    page.click("#signin-form button")
    page.wait_for_selector(f"#session:has-text('signed in as {name}')")


def test_hostile_event_text_is_shown_as_text_and_runs_nothing(page, console: Console) -> None:
    commands_before, _ = counts(console.settings)
    page.goto("/")
    sign_in(page, console, "alice")  # what a script would act as
    marker = page.locator(".fire-marker[data-fire-key='X']")
    marker.wait_for()
    marker.dispatch_event("mouseover")  # the tooltip: Leaflet would set a string as HTML
    tip = page.locator(".leaflet-tooltip")
    tip.wait_for()
    text = tip.inner_text()
    for field, i in (("name", 0), ("stage", 2), ("response", 3)):
        assert hostile(field, i) in text, (field, text)
    marker.dispatch_event("click")  # the panel: name, agency, stage, response, history, the tile's feedback
    page.wait_for_selector("#panel .tile .feedback-known:has-text('labelled')")
    panel = page.inner_text("#panel")
    for field, i in (("name", 0), ("agency", 1), ("stage", 2), ("response", 3), ("by", 2), ("note", 0)):
        assert hostile(field, i) in panel, (field, panel)
    filters = page.inner_text("#filters")
    assert hostile("agency", 1) in filters and hostile("stage", 2) in filters  # <option>s, as text
    page.evaluate("map.setZoom(13)")  # Leaflet's panes, tiles and controls under the CSP
    page.wait_for_timeout(500)
    assert page.evaluate(DANGER) == CLEAN

    page.goto("/models")
    page.wait_for_selector("#decisions tbody tr >> nth=1")
    table = page.inner_text("#decisions")
    for field, i in (("version", 0), ("requested_by", 0), ("reason", 0), ("requested_by", 2), ("reason", 1),
                     ("warning", 0), ("warning", 3)):
        assert hostile(field, i) in table, (field, table)
    roles = page.inner_text("#roles")
    assert hostile("version", 0) in roles and page.text_content("#champion") == hostile("version", 0)
    hrefs = page.eval_on_selector_all("#roles a", "els => els.map(a => a.href)")
    assert hrefs and all(h.startswith(("http://", "https://")) for h in hrefs), hrefs
    # the run id (from an event) is one escaped path segment in the plot URLs, which answer 404 as text
    page.wait_for_selector("[data-role='previous'] .hint:has-text('plot')")
    page.wait_for_timeout(500)
    assert page.evaluate(DANGER) == CLEAN
    assert counts(console.settings)[0] == commands_before  # nothing was sent as alice


def test_every_response_has_the_csp_and_an_inline_script_is_blocked(page, console: Console) -> None:
    for path in ("/", "/models", "/static/map.js", "/api/fires", "/nowhere", "/vendor/leaflet/leaflet.js"):
        r = httpx.get(console.url + path)
        csp = r.headers.get("content-security-policy", "")
        assert "script-src 'self'" in csp and "object-src 'none'" in csp and "frame-ancestors 'none'" in csp, path
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert r.headers["x-content-type-options"] == "nosniff" and r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] in ("no-referrer", "same-origin")
    page.goto("/")
    page.wait_for_selector(".fire-marker[data-fire-key='X']")
    page.evaluate("""() => { const s = document.createElement('script'); s.textContent = 'window.inlineRan = 1';
                             document.head.append(s); }""")
    page.wait_for_function("() => window.__violations.length > 0")
    assert page.evaluate("window.inlineRan ?? null") is None
    assert any(v.startswith("script-src-elem inline") for v in page.evaluate("window.__violations"))


def test_cross_origin_and_non_json_writes_are_refused_and_publish_nothing(console: Console) -> None:
    before = counts(console.settings)
    with signed_in(console, "alice") as client:
        tile_id = console.tile_id
        for path, body in (("/api/commands", {"command": "rollback"}),
                           ("/api/feedback", {"tile_id": tile_id, "label": "wildfire"}),
                           ("/api/signout", {}), ("/api/signin", {"secret": console.secrets["bob"]})):
            for headers, status in (({"Origin": "http://evil.example"}, 403),
                                    ({"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}, 403),
                                    ({"Sec-Fetch-Site": "cross-site"}, 403),
                                    ({"Origin": "null"}, 403)):
                r = client.post(path, json=body, headers=headers)
                assert r.status_code == status and "console's own pages" in r.json()["error"], (path, headers)
            # the form a cross-site page can send without a preflight: text/plain
            r = client.post(path, content=httpx.Request("POST", "/", json=body).content,
                            headers={"Content-Type": "text/plain"})
            assert r.status_code == 415, path
        assert client.get("/api/me").json()["user"] == "alice"  # the sign-out was refused too
    assert counts(console.settings) == before
    metrics = httpx.get(f"{console.url}/metrics").text
    assert 'emberwatch_console_refused_requests_total{reason="origin"}' in metrics


def _raw_post(url: str, path: str, head: dict[str, str], body: bytes) -> int:
    """POST over a raw socket: the headers and ``body``, which is never finished (less than declared, or
    chunks with no last chunk), then wait for the answer. A server that read bodies whole before any
    limit would wait for the rest, and this would time out."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=15) as sock:
        lines = [f"POST {path} HTTP/1.1", f"Host: {parts.netloc}", f"Origin: {url}", "Sec-Fetch-Site: same-origin",
                 "Content-Type: application/json", *(f"{k}: {v}" for k, v in head.items())]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        answer = sock.recv(4096)
    return int(answer.split(b" ", 2)[1])


def test_an_oversized_body_is_413_before_it_is_read(console: Console) -> None:
    before = counts(console.settings)
    with signed_in(console, "alice") as client:
        cookie = f"emberwatch_console={client.cookies['emberwatch_console']}"
    huge = 150 * 1024 * 1024
    chunk = b"x" * 40_000
    two_chunks = b"%x\r\n%s\r\n" % (len(chunk), chunk) * 2  # 80 kB, past the 64 KiB limit, and no last chunk
    for path in ("/api/signin", "/api/commands", "/api/feedback"):
        # a declared 150 MiB, 1 KiB of it sent: refused on the header
        assert _raw_post(console.url, path, {"Content-Length": str(huge), "Cookie": cookie}, b"{" * 1024) == 413
        # chunked, never finished: refused once the limit is passed, not at the end (there is none)
        assert _raw_post(console.url, path, {"Transfer-Encoding": "chunked", "Cookie": cookie}, two_chunks) == 413
    assert counts(console.settings) == before


def test_a_named_operator_is_who_requested_by_names(console: Console) -> None:
    with signed_in(console, "bob") as client:
        r = client.post("/api/commands", json={"command": "reject", "reason": "not on my watch"})
        assert r.status_code == 202, r.text
        command_id = r.json()["command_id"]
        r = client.post("/api/feedback", json={"tile_id": console.tile_id, "label": "wildfire"})
        assert r.status_code == 202, r.text
        feedback_id = r.json()["event_id"]
    (command,) = [c for c in map(ModelCommand.from_bytes, read_all(console.settings, ModelCommand.TOPIC))
                  if c.event_id == command_id]
    assert command.requested_by == "console:bob"
    (feedback,) = [f for f in map(LabelFeedback.from_bytes, read_all(console.settings, LabelFeedback.TOPIC))
                   if f.event_id == feedback_id]
    assert feedback.labelled_by == "console:bob"


def test_wrong_or_borrowed_secrets_are_refused_and_a_removed_operator_is_out(console: Console) -> None:
    with page_client(console.url) as client:
        for secret in ("alice:" + "A" * 43,  # a real name, a made-up secret
                       console.secrets["bob"].replace("bob:", "alice:", 1),  # bob's secret under alice's name
                       "mallory:" + console.secrets["bob"].split(":", 1)[1]):  # a name that is no operator
            r = client.post("/api/signin", json={"secret": secret})
            assert r.status_code == 401 and "set-cookie" not in r.headers
        r = client.post("/api/signin", json={"name": "alice", "token": console.secrets["alice"]})
        assert r.status_code == 422  # a typed name is not a thing the console reads
    with signed_in(console, "carol") as carol:
        r = carol.get("/api/me")
        assert r.json()["user"] == "carol"
        set_cookie = carol.post("/api/signin", json={"secret": console.secrets["carol"]}).headers["set-cookie"]
        assert "HttpOnly" in set_cookie and "SameSite=strict" in set_cookie.replace("Strict", "strict")
        assert "Max-Age=" in set_cookie and "Secure" not in set_cookie  # plain http here
        OperatorRegistry(console.operators).remove("carol")  # emberwatch console-operator remove carol
        before = counts(console.settings)
        assert carol.post("/api/commands", json={"command": "rollback"}).status_code == 401
        assert carol.get("/api/me").json()["user"] is None
        assert carol.post("/api/signin", json={"secret": console.secrets["carol"]}).status_code == 401
        assert counts(console.settings) == before
    log = (Path(console.env["EMBERWATCH_CONSOLE_OPERATORS_FILE"]).parent / "console.log").read_text()
    assert all(secret not in log for secret in console.secrets.values())


def test_sign_in_is_throttled_per_client_and_the_legacy_token_cannot_choose_a_name(console: Console,
                                                                                  tmp_path) -> None:
    """A second console: 3 failures a minute, the legacy shared token set, behind an https origin."""
    token = "legacy-7f3a9c1e5b-shared"
    public = "https://console.example.test"
    env = console.env | {"EMBERWATCH_CONSOLE_SIGNIN_FAILURES_PER_MINUTE": "3",
                         "EMBERWATCH_CONSOLE_OPERATOR_TOKEN": token, "EMBERWATCH_CONSOLE_PUBLIC_URL": public}
    with console_process(console.settings, tmp_path / "throttled.log", env, fires=1, tiles=1) as url:
        with page_client(url, origin=public) as client:
            r = client.post("/api/signin", json={"secret": token})
            assert r.status_code == 200 and r.json() == {"user": "shared-token"}  # not a name anyone typed
            assert "Secure" in r.headers["set-cookie"]  # the public origin is https
            assert client.post("/api/signin", json={"secret": "alice:" + token}).status_code == 401
            for _ in range(2):
                assert client.post("/api/signin", json={"secret": "nope"}).status_code == 401
            # the limit: even the right secret now waits, and another X-Forwarded-For does not help
            for headers in ({}, {"X-Forwarded-For": "203.0.113.9"}):
                r = client.post("/api/signin", json={"secret": console.secrets["alice"]}, headers=headers)
                assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 60, r.text
            metrics = client.get("/metrics").text
            line = next(x for x in metrics.splitlines()
                        if x.startswith("emberwatch_console_writes_total") and 'outcome="throttled"' in x)
            assert float(line.rsplit(" ", 1)[1]) == 2.0
    assert token not in (tmp_path / "throttled.log").read_text()


def test_the_basemap_serves_only_the_consoles_pages(console: Console) -> None:
    z, x, y = 12, 700, 1300
    for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Referer": "http://evil.example/"}, {}):
        assert httpx.get(f"{console.url}/basemap/{z}/{x}/{y}", headers=headers).status_code == 403
    # from the console's page it is fetched (no provider listens here: 502, the token spent on nobody else)
    r = httpx.get(f"{console.url}/basemap/{z}/{x}/{y}", headers={"Sec-Fetch-Site": "same-origin"})
    assert r.status_code == 502 and r.headers["x-content-type-options"] == "nosniff"
