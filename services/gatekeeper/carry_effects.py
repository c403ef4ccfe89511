"""The core's effects carried out: Triton through ``serving``, MLflow through ``registry``, the
model-quality figures, the counters, the live-score log, log lines; events go to the outbox that the
handlers publish (decisions first, then detections, then alerts)."""

from __future__ import annotations

import logging

from emberwatch.contracts.events import Detection, ModelDecision
from emberwatch.messaging.alerts import make_alert
from services.gatekeeper.core import effects as fx
from services.gatekeeper.live_scores import LiveScores
from services.gatekeeper.measure_latency import observe_fire_to_prediction
from services.gatekeeper.metrics import COUNTERS
from services.gatekeeper.record_quality import ModelQuality
from services.gatekeeper.registry import Registry
from services.gatekeeper.serving.control import ServingControl
from services.gatekeeper.settings import SERVICE

log = logging.getLogger(__name__)


class Outbox:
    """The events a run produced, in the order they are published: decisions, detections, alerts."""

    def __init__(self) -> None:
        self.decisions: list = []
        self.detections: list = []
        self.alerts: list = []

    def add(self, event: object) -> None:
        if isinstance(event, ModelDecision):
            self.decisions.append(event)
        elif isinstance(event, Detection):
            self.detections.append(event)
        else:
            self.alerts.append(event)

    def events(self) -> list:
        return self.decisions + self.detections + self.alerts


class EffectCarrier:
    def __init__(self, serving: ServingControl, registry: Registry, quality: ModelQuality, live_scores: LiveScores):
        self.serving = serving
        self.registry = registry
        self.quality = quality
        self.live_scores = live_scores

    def carry(self, e: fx.Effect, out: Outbox) -> None:  # noqa: C901, PLR0912 - one branch per effect
        match e:
            case fx.Publish():
                out.add(e.event)
            case fx.RaiseAlert():
                out.add(make_alert(SERVICE, e.alert, e.severity, e.message,  # type: ignore[arg-type]
                                   details=e.details))
            case fx.SetChallenger():
                self.serving.set_challenger(e.version)
            case fx.UnloadModel():
                self.serving.drop_head(e.version)
            case fx.SwitchChampion():
                self.serving.switch_champion(e.version, previous=e.previous)
            case fx.RetireUnused():
                self.serving.retire_unused()
            case fx.SetAlias():
                self.registry.set_alias(e.alias, e.version)
            case fx.ClearAlias():
                self.registry.clear_alias(e.alias, only_if=e.only_if)
            case fx.RecordToMlflow():
                try:
                    self.registry.log_evidence(e.run_id, e.document, e.metrics, e.params, name=e.name)
                    if e.tag is not None:
                        self.registry.client.set_tag(e.run_id, "gatekeeper.decision", e.tag)
                except Exception as exc:  # noqa: BLE001 - the decision stands even if MLflow hiccups
                    log.warning("could not log evidence to MLflow", extra={"run_id": e.run_id, "error": str(exc)})
            case fx.Count():
                counter = COUNTERS[e.metric]
                (counter.labels(*e.labels) if e.labels else counter).inc(e.by)
            case fx.ObserveScores():
                self.quality.observe(e.version, list(e.labels), list(e.wildfire), e.source)
            case fx.SetReference():
                self.quality.set_reference(e.version, e.wildfire)
            case fx.ObservePairs():
                self.quality.shadow_pairs(e.shadow, e.pairs)
            case fx.RecordLiveScore():
                self.live_scores.record(e.version, e.tile_id, e.wildfire)
            case fx.ObserveLatency():
                observe_fire_to_prediction(e.tile)
            case fx.Guarded():
                try:
                    for inner in e.effects:
                        self.carry(inner, out)
                except Exception as exc:  # noqa: BLE001 - what came before stands
                    log.warning(e.warning, extra={**e.extra, "error": str(exc)})
            case fx.Log():
                getattr(log, e.level)(e.message, extra=e.extra)
            case _:
                raise TypeError(f"no adapter carries {type(e).__name__}")
