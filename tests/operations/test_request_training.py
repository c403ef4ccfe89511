"""`emberwatch train` publishes a TrainingRequest on the real broker."""

from __future__ import annotations

import subprocess
import sys

import pytest

from emberwatch.contracts import TrainingRequest
from tests.conftest import env_for
from tests.messaging.helpers import read_all

pytestmark = pytest.mark.timeout(120)


async def test_cli_train_publishes_a_command(kafka_settings):
    before = await read_all(kafka_settings.kafka_bootstrap_servers, TrainingRequest.TOPIC, expect=10**6,
                            timeout_s=2)
    result = subprocess.run(
        [sys.executable, "-m", "emberwatch.cli.main", "train", "--reason", "new imagery",
         "--requested-by", "ops-team"],
        env=env_for(kafka_settings), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    records = await read_all(kafka_settings.kafka_bootstrap_servers, TrainingRequest.TOPIC,
                             expect=len(before) + 1)
    event = TrainingRequest.from_bytes(records[-1].value)
    assert (event.reason, event.requested_by, event.producer) == ("new imagery", "ops-team", "cli")
    assert event.event_id in result.stderr
