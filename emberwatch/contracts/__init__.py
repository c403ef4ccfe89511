"""Event contracts: one pydantic model per event type, a version in each topic name.

See docs/architecture.md#event-contracts.
"""

from emberwatch.contracts.envelope import Envelope, fact_id, new_id
from emberwatch.contracts.events import (
    EVENT_TYPES,
    Detection,
    FireObserved,
    LabelFeedback,
    LeakageCheck,
    ModelCandidate,
    ModelCommand,
    ModelDecision,
    PipelineAlert,
    TileReady,
    TileRelabelled,
    TrainingRequest,
    event_for_topic,
)
from emberwatch.contracts.topics import ALL_TOPICS, Topic, dlq_topic

__all__ = [
    "ALL_TOPICS",
    "Detection",
    "EVENT_TYPES",
    "Envelope",
    "FireObserved",
    "LabelFeedback",
    "ModelCandidate",
    "ModelCommand",
    "ModelDecision",
    "PipelineAlert",
    "LeakageCheck",
    "TileReady",
    "TileRelabelled",
    "Topic",
    "TrainingRequest",
    "dlq_topic",
    "event_for_topic",
    "fact_id",
    "new_id",
]
