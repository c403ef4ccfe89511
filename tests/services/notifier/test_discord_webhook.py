"""DiscordWebhook over real HTTP against the simulator: success, 429, remaining=0, 5xx, 4xx, secrecy."""

from __future__ import annotations

import logging
import traceback
import uuid

import httpx
import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr

from emberwatch.common.telemetry import free_port
from emberwatch.messaging.consumer import PermanentError
from services.notifier.discord_webhook import (
    DiscordRejected,
    DiscordUnavailable,
    DiscordWebhook,
    rate_limit_wait_s,
)
from simulators.discord.main import serve_in_thread

pytestmark = pytest.mark.timeout(60)


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def sim():
    with serve_in_thread() as (base, state):
        token = f"SeCrEtToKeN-{uuid.uuid4().hex}"
        hook = state.add_webhook(name="test", token=token)
        admin = httpx.Client(base_url=base, timeout=10)
        admin.post("/api/_admin/config", json={"rate_limit": 50, "rate_window_s": 10})
        url = f"{base}/api/webhooks/{hook.id}/{token}"
        try:
            yield {"base": base, "url": url, "token": token, "hook": hook, "state": state, "admin": admin}
        finally:
            admin.close()


async def _post(url: str, payload: dict, **kwargs) -> object:
    async with httpx.AsyncClient(timeout=5) as http:
        hook = DiscordWebhook(SecretStr(url), http=http, backoff_s=0.01, **kwargs)
        return await hook.post(payload)


def _assert_secret_free(text: str, sim: dict) -> None:
    assert sim["token"] not in text
    assert sim["url"] not in text


def _exception_text(exc: BaseException) -> str:
    parts = ["".join(traceback.format_exception(exc)), repr(exc), str(exc)]
    seen = exc.__cause__ or exc.__context__
    while seen is not None:  # nothing chained may carry the URL either
        parts.append(repr(seen))
        seen = seen.__cause__ or seen.__context__
    return "\n".join(parts)


async def test_a_post_is_confirmed_with_the_message_id(sim):
    result = await _post(sim["url"], {"content": "hello"})
    assert result.message_id and result.message_id.isdigit()
    assert result.attempts == 1
    posted = sim["state"].posted
    assert [p["message"]["id"] for p in posted] == [result.message_id]


async def test_429_waits_retry_after_and_retries(sim, caplog):
    caplog.set_level(logging.DEBUG)
    sim["admin"].post("/api/_admin/config", json={"rate_limit": 1, "rate_window_s": 0.3})
    # Someone else spends the bucket, so our client learns about the limit from a 429.
    assert httpx.post(sim["url"], json={"content": "other"}).status_code == 204
    waits_before = metric("emberwatch_notifier_rate_limit_waits_total", cause="429")
    retries_before = metric("emberwatch_notifier_retries_total", reason="rate_limited")
    result = await _post(sim["url"], {"content": "ours"})
    assert result.rate_limit_waits >= 1 and result.attempts >= 2
    assert metric("emberwatch_notifier_rate_limit_waits_total", cause="429") > waits_before
    assert metric("emberwatch_notifier_retries_total", reason="rate_limited") > retries_before
    assert [p["message"]["content"] for p in sim["state"].posted] == ["other", "ours"]
    _assert_secret_free(caplog.text, sim)


async def test_remaining_zero_pauses_before_sending_so_no_429_happens(sim):
    sim["admin"].post("/api/_admin/config", json={"rate_limit": 2, "rate_window_s": 0.4})
    before = metric("emberwatch_notifier_rate_limit_waits_total", cause="remaining_zero")
    async with httpx.AsyncClient(timeout=5) as http:
        hook = DiscordWebhook(SecretStr(sim["url"]), http=http)
        results = [await hook.post({"content": str(i)}) for i in range(5)]
    assert all(r.attempts == 1 for r in results)  # never had to repeat a request
    assert sim["state"].requests == 5  # ... because no request was answered with 429
    assert metric("emberwatch_notifier_rate_limit_waits_total", cause="remaining_zero") >= before + 2
    assert [p["message"]["content"] for p in sim["state"].posted] == ["0", "1", "2", "3", "4"]


async def test_5xx_is_retried_with_backoff(sim):
    sim["admin"].post("/api/_admin/config", json={"fail_next": 2, "fail_status": 502})
    before = metric("emberwatch_notifier_retries_total", reason="server_error")
    result = await _post(sim["url"], {"content": "after outage"})
    assert result.attempts == 3
    assert metric("emberwatch_notifier_retries_total", reason="server_error") == before + 2
    assert len(sim["state"].posted) == 1


async def test_persistent_5xx_gives_up_after_max_attempts_without_the_url(sim, caplog):
    caplog.set_level(logging.DEBUG)
    sim["admin"].post("/api/_admin/config", json={"fail_all_status": 500})
    with pytest.raises(DiscordUnavailable) as info:
        await _post(sim["url"], {"content": "x"}, max_attempts=3)
    assert not isinstance(info.value, PermanentError)  # transient: Kafka retries, then DLQ
    assert sim["state"].requests == 3
    _assert_secret_free(_exception_text(info.value), sim)
    _assert_secret_free(caplog.text, sim)


@pytest.mark.parametrize("case", ["too_big", "bad_token", "unknown_webhook"])
async def test_4xx_is_permanent_with_one_request_and_no_secret(sim, caplog, case):
    caplog.set_level(logging.DEBUG)
    url, payload, status, code = sim["url"], {"content": "x"}, 400, 50035
    if case == "too_big":
        payload = {"embeds": [{"title": "t" * 300}]}  # the client does not shorten: the handler does
    elif case == "bad_token":
        url, status, code = sim["url"].replace(sim["token"], "wrong"), 401, 50027
    else:
        url, status, code = sim["url"].replace(str(sim["hook"].id), "42"), 404, 10015
    with pytest.raises(DiscordRejected) as info:
        await _post(url, payload)
    assert isinstance(info.value, PermanentError)
    assert info.value.status == status and info.value.code == code
    assert sim["state"].requests == 1  # no retry storm
    assert not sim["state"].posted
    _assert_secret_free(_exception_text(info.value), sim)
    _assert_secret_free(caplog.text, sim)
    assert url not in caplog.text


async def test_network_errors_are_retried_then_reported_without_the_url(caplog):
    caplog.set_level(logging.DEBUG)
    token = f"SeCrEtToKeN-{uuid.uuid4().hex}"
    url = f"http://127.0.0.1:{free_port()}/api/webhooks/1/{token}"  # nothing listens there
    with pytest.raises(DiscordUnavailable) as info:
        await _post(url, {"content": "x"}, max_attempts=2)
    text = _exception_text(info.value)
    assert token not in text and url not in text
    assert token not in caplog.text


async def test_the_client_never_shows_the_url_in_its_repr():
    async with httpx.AsyncClient() as http:
        hook = DiscordWebhook(SecretStr("https://discord.com/api/webhooks/1/abcdefSECRET"), http=http)
        assert "SECRET" not in repr(hook)
        with pytest.raises(TypeError):
            DiscordWebhook("https://discord.com/api/webhooks/1/plain", http=http)  # type: ignore[arg-type]


def test_retry_after_prefers_the_body_then_the_headers():
    def response(status: int, body: object = None, headers: dict | None = None) -> httpx.Response:
        return httpx.Response(status, json=body, headers=headers or {})

    assert rate_limit_wait_s(response(429, {"retry_after": 0.75, "global": False},
                                        {"Retry-After": "9", "X-RateLimit-Reset-After": "5"})) == 0.75
    assert rate_limit_wait_s(response(429, {"message": "x"}, {"X-RateLimit-Reset-After": "2.5",
                                                                 "Retry-After": "9"})) == 2.5
    assert rate_limit_wait_s(response(429, None, {"Retry-After": "3"})) == 3.0
    assert rate_limit_wait_s(response(429, {"retry_after": "nonsense"})) == 1.0


async def test_versioned_webhook_urls_are_kept_out_of_logs_too(sim, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")  # a service's logging config may have quieted it
    url = sim["url"].replace("/api/webhooks/", "/api/v10/webhooks/")
    result = await _post(url, {"content": "v10"})
    assert result.message_id
    assert any("HTTP Request" in r.getMessage() for r in caplog.records)  # httpx did log the request
    assert sim["token"] not in caplog.text and url not in caplog.text
