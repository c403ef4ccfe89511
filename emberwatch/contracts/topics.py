"""Topic names, exactly as docs/architecture.md#event-contracts spells them."""

from enum import StrEnum


class Topic(StrEnum):
    FIRES_OBSERVED = "fires.observed.v1"
    TILES_READY = "tiles.ready.v1"
    TILES_RELABELLED = "tiles.relabelled.v1"
    TRAINING_REQUESTS = "training.requests.v1"
    MODELS_CANDIDATES = "models.candidates.v1"
    MODELS_DECISIONS = "models.decisions.v1"
    PIPELINE_ALERTS = "pipeline.alerts.v1"
    MODELS_COMMANDS = "models.commands.v1"
    LABELS_FEEDBACK = "labels.feedback.v1"
    DETECTIONS = "detections.v1"


ALL_TOPICS: tuple[str, ...] = tuple(t.value for t in Topic)

DLQ_SUFFIX = ".dlq"


def dlq_topic(topic: str) -> str:
    """The dead-letter topic of ``topic`` (``<topic>.dlq``)."""
    return f"{topic}{DLQ_SUFFIX}"
