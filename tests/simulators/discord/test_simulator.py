"""The Discord simulator over real HTTP: wait, limits, rate limits, auth errors, error modes, pages."""

from __future__ import annotations

import time

import httpx
import pytest

from simulators.discord.main import DEFAULT_TOKEN, DEFAULT_WEBHOOK_ID, serve_in_thread

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def sim():
    with serve_in_thread() as (base, state):
        with httpx.Client(base_url=base, timeout=10) as client:
            client.post("/api/_admin/config", json={"rate_limit": 50, "rate_window_s": 10})
            yield client, state


HOOK = f"/api/webhooks/{DEFAULT_WEBHOOK_ID}/{DEFAULT_TOKEN}"


def test_wait_true_returns_the_message_object_and_without_wait_204(sim):
    client, _ = sim
    r = client.post(HOOK, params={"wait": "true"},
                    json={"content": "hello", "username": "Emberwatch",
                          "embeds": [{"title": "t", "color": 0x2ECC71}]})
    assert r.status_code == 200
    message = r.json()
    assert message["id"].isdigit() and message["webhook_id"] == DEFAULT_WEBHOOK_ID
    assert message["author"]["username"] == "Emberwatch" and message["author"]["bot"] is True
    assert message["embeds"][0]["title"] == "t"
    r2 = client.post(HOOK, json={"content": "no wait"})
    assert r2.status_code == 204 and r2.content == b""
    posted = client.get("/api/_posted").json()
    assert posted["count"] == 2
    assert [m["content"] for m in posted["messages"]] == ["hello", "no wait"]
    assert int(posted["messages"][1]["id"]) > int(message["id"])


def test_the_v10_path_works_too(sim):
    client, _ = sim
    r = client.post(f"/api/v10/webhooks/{DEFAULT_WEBHOOK_ID}/{DEFAULT_TOKEN}?wait=true", json={"content": "x"})
    assert r.status_code == 200


@pytest.mark.parametrize("payload,path,code", [
    ({"content": "x" * 2001}, ["content"], "BASE_TYPE_MAX_LENGTH"),
    ({"embeds": [{"title": "t"}] * 11}, ["embeds"], "BASE_TYPE_MAX_LENGTH"),
    ({"embeds": [{"title": "x" * 257}]}, ["embeds", "0", "title"], "BASE_TYPE_MAX_LENGTH"),
    ({"embeds": [{"description": "x" * 4097}]}, ["embeds", "0", "description"], "BASE_TYPE_MAX_LENGTH"),
    ({"embeds": [{"fields": [{"name": "n", "value": "v"}] * 26}]}, ["embeds", "0", "fields"],
     "BASE_TYPE_MAX_LENGTH"),
    ({"embeds": [{"fields": [{"name": "n" * 257, "value": "v"}]}]}, ["embeds", "0", "fields", "0", "name"],
     "BASE_TYPE_MAX_LENGTH"),
    ({"embeds": [{"fields": [{"name": "n", "value": "v" * 1025}]}]},
     ["embeds", "0", "fields", "0", "value"], "BASE_TYPE_MAX_LENGTH"),
    ({"embeds": [{"fields": [{"name": "n", "value": ""}]}]}, ["embeds", "0", "fields", "0", "value"],
     "BASE_TYPE_REQUIRED"),
    ({"embeds": [{"footer": {"text": "f" * 2049}}]}, ["embeds", "0", "footer", "text"], "BASE_TYPE_MAX_LENGTH"),
    ({"embeds": [{"author": {"name": "a" * 257}}]}, ["embeds", "0", "author", "name"], "BASE_TYPE_MAX_LENGTH"),
    ({"embeds": [{"description": "d" * 4000}, {"description": "d" * 2001}]}, ["embeds"],
     "MAX_EMBED_SIZE_EXCEEDED"),
])
def test_limits_are_enforced_with_discords_error_body(sim, payload, path, code):
    client, _ = sim
    r = client.post(HOOK, params={"wait": "true"}, json=payload)
    assert r.status_code == 400
    body = r.json()
    assert body["code"] == 50035 and body["message"] == "Invalid Form Body"
    node = body["errors"]
    for key in path:
        node = node[key]
    assert node["_errors"][0]["code"] == code
    assert client.get("/api/_posted").json()["count"] == 0


def test_limits_count_code_points_and_are_inclusive(sim):
    client, _ = sim
    ok = client.post(HOOK, params={"wait": "true"}, json={"content": "🔥" * 2000})
    assert ok.status_code == 200
    too_long = client.post(HOOK, params={"wait": "true"}, json={"content": "🔥" * 2001})
    assert too_long.status_code == 400


def test_empty_message_and_invalid_json(sim):
    client, _ = sim
    r = client.post(HOOK, json={})
    assert r.status_code == 400 and r.json()["code"] == 50006
    r = client.post(HOOK, content=b"{nope", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["code"] == 50109


def test_unknown_webhook_is_404_and_bad_token_is_401(sim):
    client, _ = sim
    r = client.post(f"/api/webhooks/42/{DEFAULT_TOKEN}", json={"content": "x"})
    assert r.status_code == 404 and r.json() == {"message": "Unknown Webhook", "code": 10015}
    r = client.post(f"/api/webhooks/{DEFAULT_WEBHOOK_ID}/wrong-token", json={"content": "x"})
    assert r.status_code == 401 and r.json()["code"] == 50027


def test_rate_limit_headers_and_429(sim):
    client, _ = sim
    client.post("/api/_admin/config", json={"rate_limit": 2, "rate_window_s": 0.5})
    first = client.post(HOOK, json={"content": "1"})
    for header in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset",
                   "X-RateLimit-Reset-After", "X-RateLimit-Bucket"):
        assert header in first.headers
    assert first.headers["X-RateLimit-Limit"] == "2"
    assert first.headers["X-RateLimit-Remaining"] == "1"
    second = client.post(HOOK, json={"content": "2"})
    assert second.headers["X-RateLimit-Remaining"] == "0"
    assert 0 < float(second.headers["X-RateLimit-Reset-After"]) <= 0.5
    assert float(second.headers["X-RateLimit-Reset"]) > time.time() - 1
    limited = client.post(HOOK, json={"content": "3"})
    assert limited.status_code == 429
    body = limited.json()
    assert body["message"] == "You are being rate limited." and body["global"] is False
    assert 0 < body["retry_after"] <= 0.5
    assert int(limited.headers["Retry-After"]) >= 1
    time.sleep(body["retry_after"] + 0.05)
    assert client.post(HOOK, json={"content": "4"}).status_code == 204
    assert [m["content"] for m in client.get("/api/_posted").json()["messages"]] == ["1", "2", "4"]


def test_error_modes_fail_next_and_fail_all(sim):
    client, _ = sim
    client.post("/api/_admin/config", json={"fail_next": 2, "fail_status": 502})
    assert client.post(HOOK, json={"content": "a"}).status_code == 502
    assert client.post(HOOK, json={"content": "b"}).status_code == 502
    assert client.post(HOOK, json={"content": "c"}).status_code == 204
    client.post("/api/_admin/config", json={"fail_all_status": 503})
    assert client.post(HOOK, json={"content": "d"}).status_code == 503
    assert client.post(HOOK, json={"content": "e"}).status_code == 503
    client.post("/api/_admin/config", json={"fail_all_status": None})
    assert client.post(HOOK, json={"content": "f"}).status_code == 204
    assert [m["content"] for m in client.get("/api/_posted").json()["messages"]] == ["c", "f"]


def test_admin_creates_webhooks_and_the_page_shows_posts_escaped(sim):
    client, _ = sim
    made = client.post("/api/_admin/webhooks", json={"name": "other"}).json()
    assert made["url"].endswith(f"/api/webhooks/{made['id']}/{made['token']}")
    r = client.post(f"/api/webhooks/{made['id']}/{made['token']}", params={"wait": "true"},
                    json={"embeds": [{"title": "<script>alert(1)</script>", "description": "fire 🔥"}]})
    assert r.status_code == 200
    only_other = client.get("/api/_posted", params={"webhook_id": made["id"]}).json()
    assert only_other["count"] == 1
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and "<script>alert" not in page.text
    assert "fire 🔥" in page.text
    client.post("/api/_admin/reset")
    assert client.get("/api/_posted").json()["count"] == 0


def test_emberwatch_sim_discord_serves_the_default_webhook(tmp_path):
    import subprocess
    import sys

    from emberwatch.common.telemetry import free_port

    port = free_port()
    log = open(tmp_path / "sim.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "emberwatch.cli.main", "sim", "discord", "--port", str(port)],
                            stdout=log, stderr=log, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "simulator did not start"
            time.sleep(0.1)
        r = httpx.post(f"http://127.0.0.1:{port}{HOOK}?wait=true", json={"content": "from the CLI"})
        assert r.status_code == 200 and r.json()["content"] == "from the CLI"
    finally:
        proc.terminate()
        proc.wait(15)
        log.close()


def test_buttons_are_checked_and_kept_only_with_with_components(sim):
    client, _ = sim
    row = {"type": 1, "components": [{"type": 2, "style": 4, "label": "Fire", "custom_id": "a"},
                                     {"type": 2, "style": 2, "label": "No", "custom_id": "b"}]}
    kept = client.post(HOOK, params={"wait": "true", "with_components": "true"},
                       json={"content": "x", "components": [row]})
    assert kept.status_code == 200 and kept.json()["components"] == [row]
    ignored = client.post(HOOK, params={"wait": "true"}, json={"content": "y", "components": [row]})
    assert ignored.status_code == 200 and ignored.json()["components"] == []  # as Discord does
    twice = {"type": 1, "components": [dict(row["components"][0]), dict(row["components"][0])]}
    long_id = {"type": 1, "components": [{"type": 2, "style": 1, "label": "L", "custom_id": "c" * 101}]}
    for bad in ([twice], [long_id], [row] * 6, [{"type": 2}]):
        r = client.post(HOOK, params={"with_components": "true"}, json={"content": "z", "components": bad})
        assert r.status_code == 400 and r.json()["code"] == 50035 and "components" in r.json()["errors"]
    assert "<button disabled>Fire</button>" in client.get("/").text
