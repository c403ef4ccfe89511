"""Mapbox client parts without a network: rate-limit headers, token sources, the auth breaker."""

from __future__ import annotations

import asyncio
import email.utils
import time

import httpx
import pytest

from services.tiler.mapbox_client import (
    AuthBreaker,
    ClientConfig,
    MapboxClient,
    MapboxWaitExpired,
    TokenSource,
)


def _wait(headers: dict, cap: float = 300.0) -> float:
    client = MapboxClient(ClientConfig(base_url="http://127.0.0.1:9", rate_limit_max_wait_s=cap), TokenSource())
    return client._rate_limit_wait(httpx.Response(429, headers=headers))


def test_rate_limit_wait_reads_retry_after_then_the_reset_time():
    assert _wait({"Retry-After": "7"}) == 7
    assert _wait({"Retry-After": "7", "X-Rate-Limit-Reset": str(int(time.time()) + 50)}) == 7
    assert 40 < _wait({"X-Rate-Limit-Reset": str(int(time.time()) + 45)}) <= 45
    date = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 < _wait({"Retry-After": date}) <= 30
    assert _wait({"Retry-After": "3600"}, cap=120) == 120  # never trust a header blindly
    assert 0 < _wait({}) < 5


def test_token_source_prefers_the_secrets_file_then_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv(TokenSource.ENV, raising=False)
    secret = tmp_path / "token"
    src = TokenSource("pk.settings", secret)
    assert src.current() == "pk.settings"
    monkeypatch.setenv(TokenSource.ENV, "pk.env")
    assert src.current() == "pk.env"
    secret.write_text("pk.file\n")
    assert src.current() == "pk.file"
    with pytest.raises(ValueError):
        MapboxClient(ClientConfig(base_url="http://x", max_in_flight=33), src)


async def test_breaker_holds_until_the_token_changes_or_a_probe_is_due(tmp_path, monkeypatch):
    monkeypatch.delenv(TokenSource.ENV, raising=False)
    secret = tmp_path / "token"
    secret.write_text("pk.old")
    breaker = AuthBreaker(TokenSource(None, secret), recheck_s=0.01, probe_s=3600)
    assert await breaker.admit(time.monotonic() + 1) == "pk.old"
    assert breaker.trip("pk.old") is True
    assert breaker.trip("pk.old") is False  # already open: no second alert
    with pytest.raises(MapboxWaitExpired):
        await breaker.admit(time.monotonic() + 0.05)
    waiter = asyncio.create_task(breaker.admit(time.monotonic() + 5))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    secret.write_text("pk.new")
    assert await asyncio.wait_for(waiter, 2) == "pk.new"
    probing = AuthBreaker(TokenSource(None, secret), recheck_s=0.01, probe_s=0.05)
    probing.trip("pk.new")
    assert await asyncio.wait_for(probing.admit(time.monotonic() + 5), 2) == "pk.new"  # a probe
