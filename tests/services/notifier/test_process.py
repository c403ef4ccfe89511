"""`emberwatch run notifier` as a real process: posts, stops on SIGTERM, and after a restart a
replayed decision posts nothing new. Its stderr never shows the webhook URL or token."""

from __future__ import annotations

import signal
import subprocess
import sys
import uuid

import httpx
import pytest

from emberwatch.common.telemetry import free_port
from emberwatch.messaging.broker import build_broker
from simulators.discord.main import serve_in_thread
from tests.conftest import env_for
from tests.messaging.helpers import unique, wait_for
from tests.services.notifier.helpers import decision

pytestmark = pytest.mark.timeout(180)


def _scrape(port: int, name: str, labels: str) -> float:
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return 0.0
    for line in text.splitlines():
        if line.startswith(f"{name}{{{labels}}} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def _publish(settings, events, key: bytes) -> None:
    broker = build_broker(settings, "notifier-process-test")
    await broker.start()
    try:
        for event in events:
            await broker.publish(event.to_bytes(), topic=event.TOPIC, key=key)
    finally:
        await broker.stop()


def _stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(10)


async def test_the_service_process_posts_once_across_a_restart(kafka_settings, tmp_path):
    model = f"it-{uuid.uuid4().hex[:8]}"  # other tests use the real topics too: ours is unique
    first, sentinel = decision("promoted", "1", model=model), decision("promoted", "2", model=model)
    key = first.key().encode()  # one key: one partition, so the sentinel comes after the replay
    with serve_in_thread() as (base, state):
        token = f"SeCrEt-{uuid.uuid4().hex}"
        hook = state.add_webhook(name="proc", token=token)
        url = f"{base}/api/webhooks/{hook.id}/{token}"
        metrics_port = free_port()
        env = env_for(kafka_settings)
        env.update({
            "EMBERWATCH_DISCORD_WEBHOOK_URL": url,
            "EMBERWATCH_STATE_DIR": str(tmp_path),
            "EMBERWATCH_NOTIFIER_GROUP_ID": unique("notifier-proc"),
            "EMBERWATCH_KAFKA_SESSION_TIMEOUT_MS": "3000",
            "EMBERWATCH_METRICS_PORT": str(metrics_port),
            "EMBERWATCH_LOG_LEVEL": "DEBUG",
        })
        argv = [sys.executable, "-m", "emberwatch.cli.main", "run", "notifier"]

        def ours() -> list[dict]:
            return [p["message"] for p in state.posted
                    if model in p["message"]["embeds"][0]["title"]]

        await _publish(kafka_settings, [first], key)
        logs = [tmp_path / "run1.log", tmp_path / "run2.log"]
        with open(logs[0], "wb") as err:
            proc = subprocess.Popen(argv, env=env, stderr=err, stdout=err, start_new_session=True)
            try:
                await wait_for(lambda: len(ours()) == 1, timeout_s=90)
            finally:
                code = _stop(proc)
        assert code == 0

        await _publish(kafka_settings, [first, sentinel], key)  # a replay, then something new
        with open(logs[1], "wb") as err:
            proc = subprocess.Popen(argv, env=env, stderr=err, stdout=err, start_new_session=True)
            try:
                await wait_for(lambda: len(ours()) == 2, timeout_s=90)
                suppressed = _scrape(metrics_port, "emberwatch_notifier_duplicates_suppressed_total",
                                     'kind="promoted"')
            finally:
                code = _stop(proc)
        assert code == 0
        titles = [m["embeds"][0]["title"] for m in ours()]
        assert titles == [f"✅ {model} v{v} (Mapbox) promoted to champion" for v in (1, 2)]
        assert suppressed >= 1
        for log in logs:
            text = log.read_text()
            assert "posted to Discord" in text
            assert token not in text and url not in text
