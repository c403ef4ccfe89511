"""``emberwatch create-topics`` against a private broker: every contract topic and its DLQ with the
chosen partitions, idempotent, an existing topic with too few partitions reported, bad specs refused."""

from __future__ import annotations

import subprocess
import sys

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from emberwatch.contracts.topics import ALL_TOPICS, dlq_topic
from emberwatch.operations.create_topics import create_topics, parse_partitions, planned_partitions
from emberwatch.stack import manage
from tests.conftest import env_for, stack_settings

pytestmark = pytest.mark.timeout(180)


async def partitions(settings, topics: list[str]) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        return {t["topic"]: len(t["partitions"]) for t in await admin.describe_topics(topics)}
    finally:
        await admin.close()


def test_partition_specs_are_parsed_and_bad_ones_refused():
    assert parse_partitions(" fires.observed.v1=3, tiles.ready.v1.dlq=2 ,") == {
        "fires.observed.v1": 3, "tiles.ready.v1.dlq": 2}
    for bad in ("fires.observed.v1", "fires.observed.v1=0", "fires.observed.v1=x", "no.such.topic=2"):
        with pytest.raises(ValueError):
            parse_partitions(bad)


async def test_topics_are_created_with_their_partitions_once(tmp_path):
    settings = stack_settings(tmp_path, "kafka").model_copy(update={
        "kafka_topic_partitions": "fires.observed.v1=3,tiles.ready.v1=2"})
    manage.up(settings)
    try:
        # A topic someone created before, with fewer partitions than asked.
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
        await admin.start()
        await admin.create_topics([NewTopic("tiles.ready.v1", num_partitions=1, replication_factor=1)])
        await admin.close()

        plans = {p.topic: p for p in await create_topics(settings)}
        expected = {t for topic in ALL_TOPICS for t in (topic, dlq_topic(topic))}
        assert set(plans) == expected
        assert plans["fires.observed.v1"].existing is None and plans["fires.observed.v1"].partitions == 3
        assert plans["tiles.ready.v1"].short and plans["tiles.ready.v1"].existing == 1
        counts = await partitions(settings, sorted(expected))
        assert counts["fires.observed.v1"] == 3
        assert counts["tiles.ready.v1"] == 1  # left as it was: adding partitions re-maps keys
        assert all(counts[t] == 1 for t in expected - {"fires.observed.v1", "tiles.ready.v1"})
        assert planned_partitions(settings)["tiles.ready.v1.dlq"] == settings.kafka_default_partitions

        # The command, run again: nothing created, the short topic named.
        env = {**env_for(settings), "EMBERWATCH_KAFKA_TOPIC_PARTITIONS": settings.kafka_topic_partitions,
               "COLUMNS": "200"}
        again = subprocess.run([sys.executable, "-m", "emberwatch.cli.main", "create-topics"], env=env,
                               capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stderr[-2000:]
        assert "created" not in again.stdout
        assert "fewer than asked" in again.stdout and "tiles.ready.v1" in again.stdout
        bad = subprocess.run([sys.executable, "-m", "emberwatch.cli.main", "create-topics"],
                             env={**env, "EMBERWATCH_KAFKA_TOPIC_PARTITIONS": "nope=2"},
                             capture_output=True, text=True, timeout=120)
        assert bad.returncode == 2 and "unknown topic" in bad.stdout + bad.stderr
    finally:
        manage.down(settings)
