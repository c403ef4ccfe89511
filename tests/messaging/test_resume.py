"""A consumer killed (SIGKILL) mid-batch resumes from its last committed batch: nothing lost, at
most one batch handled twice."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys

import pytest

from emberwatch.contracts import PipelineAlert
from emberwatch.messaging.broker import build_broker
from tests.conftest import env_for
from tests.messaging.helpers import unique, wait_for

pytestmark = pytest.mark.timeout(180)

TOTAL = 200
BATCH = 20  # records per fetch, committed together once all are handled


def _lines(path) -> list[str]:
    return path.read_text().split() if path.exists() else []


async def test_killed_consumer_resumes_from_committed_offset(kafka_settings, tmp_path):
    topic, group = unique("resume"), unique("resume-group")
    out = tmp_path / "handled.txt"
    broker = build_broker(kafka_settings, "resume-producer")
    await broker.start()
    try:
        for i in range(TOTAL):
            event = PipelineAlert.create(producer="t", alert=f"m{i:04d}", component="c", message="m")
            await broker.publish(event.to_bytes(), topic=topic, key=b"one-partition")
    finally:
        await broker.stop()

    argv = [sys.executable, "-m", "tests.messaging.consumer_proc", topic, group, str(out),
            str(BATCH)]
    env = env_for(kafka_settings)
    first = subprocess.Popen(argv, env=env, start_new_session=True)
    try:
        await wait_for(lambda: len(_lines(out)) >= 40, timeout_s=60)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    handled_before_kill = len(_lines(out))
    assert handled_before_kill < TOTAL, "consumer finished before it could be killed"

    second = subprocess.Popen(argv, env=env, start_new_session=True)
    try:
        await wait_for(lambda: len(set(_lines(out))) >= TOTAL, timeout_s=90)
        await asyncio.sleep(0.5)
    finally:
        second.terminate()
        second.wait(15)

    seen = _lines(out)
    assert set(seen) == {f"m{i:04d}" for i in range(TOTAL)}, "a message was lost"
    duplicates = len(seen) - len(set(seen))
    # At-least-once with one commit per handled batch: only the batch in flight at the kill may be
    # handled twice (the redelivery window), never more.
    assert duplicates <= BATCH, f"{duplicates} duplicates: restarted behind the last committed batch"
