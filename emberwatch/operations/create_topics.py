"""Create the event topics and their dead-letter topics with chosen partition counts.

Auto-created topics get the broker's default partition count, which decides how many replicas of a
consumer can share the work (a consumer group never gives one partition to two members). This
creates every contract topic and its ``.dlq`` up front: ``EMBERWATCH_KAFKA_TOPIC_PARTITIONS`` names
the topics that need several partitions (``topic=count`` pairs, comma-separated), every other topic
and every DLQ gets ``EMBERWATCH_KAFKA_DEFAULT_PARTITIONS``. Existing topics are left as they are and
reported, with a warning when they have fewer partitions than asked (Kafka can add partitions but
that re-maps keys, so it is left to the operator).
"""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from emberwatch.common.config import Settings
from emberwatch.contracts.topics import ALL_TOPICS, dlq_topic
from emberwatch.messaging.broker import client_options


@dataclass(frozen=True)
class TopicPlan:
    topic: str
    partitions: int  # asked for
    existing: int | None  # partitions it already had; None when this run created it

    @property
    def short(self) -> bool:
        return self.existing is not None and self.existing < self.partitions


def parse_partitions(spec: str) -> dict[str, int]:
    """``"fires.observed.v1=3, tiles.ready.v1=3"`` → ``{"fires.observed.v1": 3, ...}``."""
    counts: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        topic, sep, count = item.partition("=")
        if not sep or not count.strip().isdigit() or int(count) < 1:
            raise ValueError(f"not a topic=partitions pair: {item!r}")
        counts[topic.strip()] = int(count)
    unknown = set(counts) - set(ALL_TOPICS) - {dlq_topic(t) for t in ALL_TOPICS}
    if unknown:
        raise ValueError(f"unknown topic(s): {', '.join(sorted(unknown))}; known: {', '.join(ALL_TOPICS)}")
    return counts


def planned_partitions(settings: Settings) -> dict[str, int]:
    """Every contract topic and its DLQ with the partition count it should have."""
    chosen = parse_partitions(settings.kafka_topic_partitions)
    default = settings.kafka_default_partitions
    topics = [t for topic in ALL_TOPICS for t in (topic, dlq_topic(topic))]
    return {t: chosen.get(t, default) for t in topics}


async def create_topics(settings: Settings) -> list[TopicPlan]:
    """Create the missing topics; describe the existing ones. Idempotent."""
    wanted = planned_partitions(settings)
    admin = AIOKafkaAdminClient(**client_options(settings), client_id=f"{settings.kafka_client_id}-topics")
    await admin.start()
    try:
        # Only topics that exist are described: asking a broker with auto-creation on about a
        # missing topic would create it with the default partition count.
        present = [t for t in await admin.list_topics() if t in wanted]
        described = await admin.describe_topics(present) if present else []
        existing = {t["topic"]: len(t["partitions"]) for t in described if not t.get("error_code")}
        missing = [NewTopic(t, num_partitions=n, replication_factor=settings.kafka_replication_factor)
                   for t, n in wanted.items() if t not in existing]
        if missing:
            await admin.create_topics(missing)
    finally:
        await admin.close()
    return [TopicPlan(t, n, existing.get(t)) for t, n in wanted.items()]
