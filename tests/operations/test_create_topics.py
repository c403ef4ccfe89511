"""``emberwatch create-topics`` against a private broker: every contract topic and its DLQ with the
chosen partitions and topic configs (retention), idempotent, an existing topic with too few
partitions or other configs reported, bad specs refused.

Tansu (the local broker) takes topic configs with CreateTopics and returns them with DescribeConfigs;
it does not offer AlterConfigs (so create-topics never alters an existing topic's configs)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from emberwatch.contracts.topics import ALL_TOPICS, dlq_topic
from emberwatch.common.config import Settings
from emberwatch.operations.create_topics import (
    create_topics,
    parse_configs,
    parse_partitions,
    planned_configs,
    planned_partitions,
)

DAY_MS = 24 * 3600 * 1000
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


async def topic_configs(settings, topics: list[str]) -> dict[str, dict[str, str]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, t) for t in topics])
        return {name: {e[0]: e[1] for e in entries}
                for r in responses for _code, _msg, _type, name, entries in r.resources}
    finally:
        await admin.close()


def test_the_default_configs_keep_facts_forever_alerts_14_days_dlqs_30_days(monkeypatch):
    monkeypatch.delenv("EMBERWATCH_KAFKA_TOPIC_CONFIGS", raising=False)
    planned = planned_configs(Settings())
    assert set(planned) == {t for topic in ALL_TOPICS for t in (topic, dlq_topic(topic))}
    assert planned["pipeline.alerts.v1"] == {"retention.ms": str(14 * DAY_MS)}
    for topic in ALL_TOPICS:
        assert planned[dlq_topic(topic)] == {"retention.ms": str(30 * DAY_MS)}, topic
        if topic != "pipeline.alerts.v1":
            assert planned[topic] == {"retention.ms": "-1"}, topic


def test_config_specs_are_parsed_in_order_and_bad_ones_refused():
    spec = " *:retention.ms=-1 ; *.dlq:retention.ms=5,cleanup.policy=delete; tiles.ready.v1.dlq:retention.ms=7;"
    assert parse_configs(spec) == [("*", {"retention.ms": "-1"}),
                                   ("*.dlq", {"retention.ms": "5", "cleanup.policy": "delete"}),
                                   ("tiles.ready.v1.dlq", {"retention.ms": "7"})]
    planned = planned_configs(Settings(kafka_topic_configs=spec))
    assert planned["tiles.ready.v1.dlq"] == {"retention.ms": "7", "cleanup.policy": "delete"}  # the later wins
    assert planned["fires.observed.v1.dlq"] == {"retention.ms": "5", "cleanup.policy": "delete"}
    assert planned["fires.observed.v1"] == {"retention.ms": "-1"}
    assert planned_configs(Settings(kafka_topic_configs="")) == {t: {} for t in planned}
    for bad in ("retention.ms=1", "no.such.topic:retention.ms=1", "*:retention", "*:retention.ms=",
                "*:Retention.MS=1", "*:retention.ms=1 2", "*.v1:retention.ms=1", "*:"):
        with pytest.raises(ValueError):
            parse_configs(bad)


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

        # Created with their configs (the defaults); the topic made before kept its own.
        configs = await topic_configs(settings, ["fires.observed.v1", "pipeline.alerts.v1",
                                                 "fires.observed.v1.dlq", "tiles.ready.v1"])
        assert configs["fires.observed.v1"]["retention.ms"] == "-1"
        assert configs["pipeline.alerts.v1"]["retention.ms"] == str(14 * DAY_MS)
        assert configs["fires.observed.v1.dlq"]["retention.ms"] == str(30 * DAY_MS)
        assert configs["tiles.ready.v1"].get("retention.ms") is None
        assert plans["tiles.ready.v1"].config_drift == {"retention.ms": (None, "-1")}
        assert plans["fires.observed.v1"].config_drift == {}  # created now: nothing to compare

        # The command, run again: nothing created, the short topic named.
        env = {**env_for(settings), "EMBERWATCH_KAFKA_TOPIC_PARTITIONS": settings.kafka_topic_partitions,
               "COLUMNS": "200"}
        again = subprocess.run([sys.executable, "-m", "emberwatch.cli.main", "create-topics"], env=env,
                               capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stderr[-2000:]
        assert "created" not in again.stdout
        assert "fewer than asked" in again.stdout and "tiles.ready.v1" in again.stdout
        # the one topic without the asked retention is named, the others match
        assert again.stdout.count("configs differ") == 1 and "retention.ms is the default" in again.stdout
        assert "kafka-configs.sh --alter" in again.stderr
        bad = subprocess.run([sys.executable, "-m", "emberwatch.cli.main", "create-topics"],
                             env={**env, "EMBERWATCH_KAFKA_TOPIC_PARTITIONS": "nope=2"},
                             capture_output=True, text=True, timeout=120)
        assert bad.returncode == 2 and "unknown topic" in bad.stdout + bad.stderr
    finally:
        manage.down(settings)
