"""What ``emberwatch models`` shows, from what any operator's machine can read: MLflow (versions,
aliases, metrics), Triton (which head versions are loaded, whether the public model answers) and the
latest decisions on models.decisions.v1. Nothing of the gatekeeper's own state is read: the
gatekeeper may run on another machine.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, TopicPartition

from emberwatch.common.config import Settings
from emberwatch.contracts.events import ModelDecision
from emberwatch.messaging.broker import client_options

HEAD_MODEL, BACKBONE_MODEL = "head", "backbone"
SHOWN_METRICS = ("val_accuracy", "val_recall", "test_recall", "gate_n", "leakage_warning")


@dataclass(frozen=True)
class VersionRow:
    """One registered version as MLflow knows it."""

    version: str
    aliases: tuple[str, ...]
    created: datetime
    run_id: str | None
    metrics: dict[str, float] = field(default_factory=dict)
    backbone: str | None = None  # what the backbone stands on: imagenet, file:<name>, random(seed=N)


@dataclass(frozen=True)
class TritonView:
    """What Triton has loaded: the public model, the backbone, and which head versions."""

    url: str
    public_model: str
    public_ready: bool = False
    backbone_ready: bool = False
    heads_ready: tuple[str, ...] = ()
    error: str | None = None


def registry_versions(tracking_uri: str, model_name: str, limit: int = 10) -> list[VersionRow]:
    """The newest ``limit`` registered versions with their aliases and run metrics (MLflow errors raise)."""
    from emberwatch.common.model_registry import mlflow_client

    client = mlflow_client(tracking_uri)
    versions = client.search_model_versions(f"name='{model_name}'")
    rows = []
    for mv in sorted(versions, key=lambda v: int(v.version), reverse=True)[:limit]:
        run = client.get_run(mv.run_id) if mv.run_id else None
        metrics = run.data.metrics if run else {}
        rows.append(VersionRow(
            version=str(mv.version), aliases=tuple(sorted(mv.aliases or ())),
            created=datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC), run_id=mv.run_id,
            metrics={k: float(v) for k, v in metrics.items() if k in SHOWN_METRICS},
            backbone=run.data.params.get("backbone_weights") if run else None))
    return rows


def triton_view(url: str, versions: list[str], *, public_model: str = "wildfire",
                timeout_s: float = 5.0) -> TritonView:
    """Ask Triton which of ``versions`` of the head are loaded (and the backbone, the public model)."""
    import tritonclient.http as httpclient

    try:
        client = httpclient.InferenceServerClient(url, connection_timeout=timeout_s,
                                                  network_timeout=timeout_s)
        try:
            if not client.is_server_live():
                return TritonView(url, public_model, error="Triton is not live")
            ready = [v for v in versions if client.is_model_ready(HEAD_MODEL, v)]
            return TritonView(url, public_model, public_ready=bool(client.is_model_ready(public_model)),
                              backbone_ready=bool(client.is_model_ready(BACKBONE_MODEL)),
                              heads_ready=tuple(ready))
        finally:
            client.close()
    except Exception as exc:  # noqa: BLE001 - tritonclient raises many types when unreachable
        return TritonView(url, public_model, error=f"{type(exc).__name__}: {exc}")


async def latest_decisions(settings: Settings, model_name: str, *, limit: int = 5, scan: int = 500,
                           timeout_s: float = 5.0) -> list[ModelDecision]:
    """The last ``limit`` decisions about ``model_name`` among the last ``scan`` records of each
    partition of models.decisions.v1, oldest first."""
    topic = ModelDecision.TOPIC
    consumer = AIOKafkaConsumer(**client_options(settings), group_id=None, enable_auto_commit=False,
                                request_timeout_ms=int(timeout_s * 1000))
    await consumer.start()
    found: list[ModelDecision] = []
    try:
        await consumer._client.force_metadata_update()  # noqa: SLF001 - aiokafka has no public call
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return []
        consumer.assign(tps)
        begin, end = await consumer.beginning_offsets(tps), await consumer.end_offsets(tps)
        remaining = {tp for tp in tps if end[tp] > begin[tp]}
        for tp in tps:
            consumer.seek(tp, max(begin[tp], end[tp] - scan))
        deadline = time.monotonic() + timeout_s
        while remaining and time.monotonic() < deadline:
            batch = await consumer.getmany(*remaining, timeout_ms=500)
            for tp, records in batch.items():
                for record in records:
                    try:
                        decision = ModelDecision.from_bytes(record.value or b"")
                    except ValueError:
                        continue
                    if decision.model_name == model_name:
                        found.append(decision)
                    if record.offset + 1 >= end[tp]:
                        remaining.discard(tp)
    finally:
        await consumer.stop()
    return sorted(found, key=lambda d: d.occurred_at)[-limit:]
