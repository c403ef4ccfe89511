"""Create the event topics and their dead-letter topics with chosen partition counts.

Auto-created topics get the broker's default partition count, which decides how many replicas of a
consumer can share the work (a consumer group never gives one partition to two members). This
creates every contract topic and its ``.dlq`` up front: ``EMBERWATCH_KAFKA_TOPIC_PARTITIONS`` names
the topics that need several partitions (``topic=count`` pairs, comma-separated), every other topic
and every DLQ gets ``EMBERWATCH_KAFKA_DEFAULT_PARTITIONS``. Existing topics are left as they are and
reported, with a warning when they have fewer partitions than asked (Kafka can add partitions but
that re-maps keys, so it is left to the operator).

Each topic is created with its topic configs (``EMBERWATCH_KAFKA_TOPIC_CONFIGS``, ``parse_configs``):
by default the facts are kept forever (``retention.ms=-1``: they are the system's history, replayed
by ``emberwatch replay``), alerts 14 days, every DLQ 30 days. An existing topic's configs are
described and every difference from the asked ones reported; they are not changed (AlterConfigs
replaces a topic's whole config set, and Tansu does not offer it): the operator changes them with
the cluster's tools (``kafka-configs.sh --alter``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from emberwatch.common.config import Settings
from emberwatch.contracts.topics import ALL_TOPICS, DLQ_SUFFIX, dlq_topic
from emberwatch.messaging.broker import client_options


# Kafka config names (retention.ms, cleanup.policy, ...) and values without separators or spaces.
_CONFIG_NAME = re.compile(r"[a-z][a-z0-9]*(\.[a-z0-9]+)+")
_CONFIG_VALUE = re.compile(r"[^\s,;:=]+")


@dataclass(frozen=True)
class TopicPlan:
    topic: str
    partitions: int  # asked for
    existing: int | None  # partitions it already had; None when this run created it
    configs: dict[str, str] = field(default_factory=dict)  # topic configs asked for
    # An existing topic's configs that differ from the asked ones: name -> (what it has, asked);
    # None when the broker could not describe them.
    config_drift: dict[str, tuple[str | None, str]] | None = field(default_factory=dict)

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


def parse_configs(spec: str) -> list[tuple[str, dict[str, str]]]:
    """``"*:retention.ms=-1; *.dlq:retention.ms=2592000000"`` → ``[("*", {...}), ("*.dlq", {...})]``.

    Entries are separated by ``;``, each ``<topics>:<name>=<value>[,<name>=<value>...]``, where
    ``<topics>`` is ``*`` (every topic and DLQ), ``*.dlq`` (every DLQ) or one topic's name. A later
    entry overrides an earlier one for the topics both cover."""
    known = set(ALL_TOPICS) | {dlq_topic(t) for t in ALL_TOPICS}
    entries = []
    for item in filter(None, (part.strip() for part in spec.split(";"))):
        pattern, sep, pairs = item.partition(":")
        pattern = pattern.strip()
        if not sep or not pairs.strip():
            raise ValueError(f"not a <topics>:<name>=<value>,... entry: {item!r}")
        if pattern not in ("*", "*.dlq") and pattern not in known:
            raise ValueError(f"unknown topic {pattern!r} in {item!r}; use *, *.dlq or one of: {', '.join(ALL_TOPICS)}")
        configs = {}
        for pair in filter(None, (p.strip() for p in pairs.split(","))):
            name, eq, value = (x.strip() for x in pair.partition("="))
            if not eq or not _CONFIG_NAME.fullmatch(name) or not _CONFIG_VALUE.fullmatch(value):
                raise ValueError(f"not a topic config name=value: {pair!r} in {item!r}")
            configs[name] = value
        entries.append((pattern, configs))
    return entries


def planned_configs(settings: Settings) -> dict[str, dict[str, str]]:
    """Every contract topic and its DLQ with the topic configs it should be created with."""
    entries = parse_configs(settings.kafka_topic_configs)
    planned = {}
    for t in (t for topic in ALL_TOPICS for t in (topic, dlq_topic(topic))):
        configs: dict[str, str] = {}
        for pattern, values in entries:
            if pattern == "*" or pattern == t or (pattern == "*.dlq" and t.endswith(DLQ_SUFFIX)):
                configs.update(values)
        planned[t] = configs
    return planned


def planned_partitions(settings: Settings) -> dict[str, int]:
    """Every contract topic and its DLQ with the partition count it should have."""
    chosen = parse_partitions(settings.kafka_topic_partitions)
    default = settings.kafka_default_partitions
    topics = [t for topic in ALL_TOPICS for t in (topic, dlq_topic(topic))]
    return {t: chosen.get(t, default) for t in topics}


async def _config_drift(admin: AIOKafkaAdminClient, asked: dict[str, dict[str, str]]
                        ) -> dict[str, dict[str, tuple[str | None, str]] | None]:
    """Per existing topic, the asked configs it does not have (None: the broker did not say)."""
    topics = [t for t, configs in asked.items() if configs]
    drift: dict[str, dict[str, tuple[str | None, str]] | None] = {t: {} for t in asked}
    if not topics:
        return drift
    try:
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, t, configs=None) for t in topics])
    except Exception:  # noqa: BLE001 - a broker without DescribeConfigs: report it as unknown
        return {t: (None if t in topics else {}) for t in asked}
    seen = set()
    for response in responses:
        for error_code, _msg, _type, name, entries in response.resources:
            if error_code:
                drift[name] = None
                continue
            seen.add(name)
            have = {entry[0]: entry[1] for entry in entries}
            drift[name] = {k: (have.get(k), v) for k, v in asked[name].items() if have.get(k) != v}
    for t in set(topics) - seen:
        drift[t] = None
    return drift


async def create_topics(settings: Settings) -> list[TopicPlan]:
    """Create the missing topics with their configs; describe the existing ones. Idempotent."""
    wanted = planned_partitions(settings)
    configs = planned_configs(settings)
    admin = AIOKafkaAdminClient(**client_options(settings), client_id=f"{settings.kafka_client_id}-topics")
    await admin.start()
    try:
        # Only topics that exist are described: asking a broker with auto-creation on about a
        # missing topic would create it with the default partition count.
        present = [t for t in await admin.list_topics() if t in wanted]
        described = await admin.describe_topics(present) if present else []
        existing = {t["topic"]: len(t["partitions"]) for t in described if not t.get("error_code")}
        missing = [NewTopic(t, num_partitions=n, replication_factor=settings.kafka_replication_factor,
                            topic_configs=configs[t])
                   for t, n in wanted.items() if t not in existing]
        if missing:
            response = await admin.create_topics(missing)
            # 36: TOPIC_ALREADY_EXISTS (another run created it meanwhile)
            refused = [err for err in response.topic_errors if err[1] not in (0, 36)]
            if refused:
                raise RuntimeError("the broker refused to create " + "; ".join(
                    f"{err[0]} (error {err[1]}: {err[2] if len(err) > 2 else ''})" for err in refused))
        drift = await _config_drift(admin, {t: configs[t] for t in existing})
    finally:
        await admin.close()
    return [TopicPlan(t, n, existing.get(t), configs[t], drift.get(t, {})) for t, n in wanted.items()]
