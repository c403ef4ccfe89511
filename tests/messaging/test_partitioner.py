"""The services' partitioner puts every key where every other Kafka client would (aiokafka's pure-Python
murmur2, the Java client's algorithm): unit checks, and published events read back from a real broker."""

from __future__ import annotations

import random

import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2

from emberwatch.contracts import PipelineAlert
from emberwatch.messaging.broker import build_broker, publish_event, publish_events
from emberwatch.messaging.partitioner import KeyPartitioner, murmur2
from tests.messaging.helpers import create_topic, read_all, unique

pytestmark = pytest.mark.timeout(120)


def test_murmur2_matches_the_java_clients_on_keys_of_every_length():
    rng = random.Random(15)
    for length in range(0, 130):
        for _ in range(40):
            key = rng.randbytes(length)
            assert murmur2(key) == aiokafka_murmur2(key), key
    # Apache Kafka's own vectors (clients' UtilsTest.testMurmur2; Java ints are signed).
    java = {b"21": -973932308, b"foobar": -790332482, b"a-little-bit-long-string": -985981536,
            b"a-little-bit-longer-string": -1486304829,
            b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971, b"abc": 479470107}
    for key, signed in java.items():
        assert murmur2(key) == signed & 0xFFFFFFFF, key


def test_the_partition_of_a_key_is_the_default_partitioners():
    rng = random.Random(7)
    ours, theirs = KeyPartitioner(), DefaultPartitioner()
    for count in (1, 2, 3, 5, 12, 64):
        partitions = list(range(count))
        for _ in range(500):
            key = rng.randbytes(rng.randint(0, 90))
            assert ours(key, partitions, partitions) == theirs(key, partitions, partitions)


def test_one_partition_needs_no_hash_and_no_key_goes_to_an_available_partition():
    assert KeyPartitioner()(b"anything", [0], [0]) == 0
    assert KeyPartitioner()(None, [0, 1, 2], [2]) == 2
    assert KeyPartitioner()(None, [0, 1, 2], []) in {0, 1, 2}


async def test_published_events_land_on_the_partition_any_kafka_client_would_choose(kafka_settings):
    topic = unique("partitions")
    await create_topic(kafka_settings, topic, partitions=3)
    model = type("RoutedAlert", (PipelineAlert,), {"TOPIC": topic})
    events = [model.create(producer="t", alert=f"a{i}", component=f"component-{i}", message="m")
              for i in range(60)]
    broker = build_broker(kafka_settings, "partitions")
    await broker.start()
    try:
        await publish_events(broker, events[:50], service="t")
        for event in events[50:]:
            await publish_event(broker, event, service="t")
    finally:
        await broker.stop()
    records = await read_all(kafka_settings.kafka_bootstrap_servers, topic, expect=len(events))
    assert len(records) == len(events)
    expected = DefaultPartitioner()
    assert len({r.partition for r in records}) == 3  # the keys spread over every partition
    for record in records:
        assert record.partition == expected(record.key, [0, 1, 2], [0, 1, 2]), record.key
