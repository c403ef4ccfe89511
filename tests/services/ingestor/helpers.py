"""Helpers for the ingestor's tests: settings against the simulator, the events on a topic."""

from __future__ import annotations

from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from emberwatch.common.config import Settings, narrow
from emberwatch.contracts import FireObserved, PipelineAlert
from services.ingestor.settings import IngestorSettings


def settings_for(base: Settings, state_dir: Path, csv_url: str = "", wfs_url: str = "",
                 **overrides) -> IngestorSettings:
    """Ingestor settings on ``base``'s broker, quick retries, the given feeds only."""
    s = narrow(base, IngestorSettings)
    update = {"state_dir": state_dir, "cwfis_csv_url": csv_url, "cwfis_wfs_url": wfs_url,
              "ingestor_retry_attempts": 3, "ingestor_retry_backoff_s": 0.01,
              "ingestor_retry_backoff_max_s": 0.05, "ingestor_total_timeout_s": 2.0,
              "ingestor_read_timeout_s": 2.0, "ingestor_connect_timeout_s": 2.0}
    update.update(overrides)
    return s.model_copy(update=update)


async def topic_records(servers: str, topic: str) -> list:
    """Every record on ``topic``, read from the beginning until two fetches come back empty.

    (Tansu's end offsets count record batches, not records, when a producer batches several
    records: they cannot bound the read, so the read stops when the topic has nothing more.)
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=servers, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        records: list = []
        empty = 0
        while empty < 2:
            batch = await consumer.getmany(*tps, timeout_ms=300)
            got = [r for recs in batch.values() for r in recs]
            records.extend(got)
            empty = 0 if got else empty + 1
        return records
    finally:
        await consumer.stop()


async def fire_events(servers: str, ids: set[str] | None = None) -> list[FireObserved]:
    """fires.observed.v1 events on the broker (only those with ``ids`` if given), in topic order."""
    out = [FireObserved.from_bytes(r.value) for r in await topic_records(servers, FireObserved.TOPIC)]
    return [e for e in out if ids is None or e.event_id in ids]


async def alerts(servers: str, component_prefix: str = "ingestor:") -> list[PipelineAlert]:
    recs = await topic_records(servers, PipelineAlert.TOPIC)
    out = []
    for r in recs:
        try:
            a = PipelineAlert.from_bytes(r.value)
        except ValueError:
            continue
        if a.component.startswith(component_prefix):
            out.append(a)
    return out
