"""The console's contracts: the topics it reads, the JSON bodies it accepts and the JSON shapes it serves."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from pydantic import BaseModel, Field, field_validator

from emberwatch.contracts import FireObserved, ModelCandidate, ModelDecision, TileReady
from emberwatch.contracts.events import CommandKind, Label, LabelFeedback
from emberwatch.contracts.products import MAPBOX, checked_product, product_title
from services.console.imagery import credits_of, imagery_view
from services.console.run_plots import PLOTS

ATTRIBUTION = credits_of(MAPBOX)  # the Mapbox imagery's credits, served with the fires and tiles


@dataclass(frozen=True)
class Topics:
    """The topics consumed (production uses the contracts')."""

    fires: str = FireObserved.TOPIC
    tiles: str = TileReady.TOPIC
    decisions: str = ModelDecision.TOPIC
    candidates: str = ModelCandidate.TOPIC
    feedback: str = LabelFeedback.TOPIC


# --- what the operators' requests carry --------------------------------------------------------------
class SignInRequest(BaseModel):
    secret: str = Field(min_length=1, max_length=512)


class CommandRequest(BaseModel):
    command: CommandKind
    version: str | None = Field(None, pattern=r"^[0-9]+$")
    reason: str = Field("", max_length=2000)
    product: str = Field(MAPBOX, max_length=64, description="The model line the command is about.")

    @field_validator("product")
    @classmethod
    def _known_product(cls, product: str) -> str:
        return checked_product(product)  # UnknownProduct is a ValueError: a 422 naming the known ones


class FeedbackRequest(BaseModel):
    tile_id: str
    label: Label
    note: str = Field("", max_length=2000)


# --- what the pages read -------------------------------------------------------------------------------

def fire_view(fire: FireObserved) -> dict:
    return {
        "fire_key": fire.fire_key, "name": fire.name, "agency": fire.agency, "source": fire.source,
        "lat": fire.lat, "lon": fire.lon, "stage": fire.stage_of_control or "unknown",
        "response_type": fire.response_type,
        "hectares": fire.hectares,
        "start_date": fire.start_date.date().isoformat() if fire.start_date else None,
        "change": fire.change, "snapshot_at": fire.snapshot_at.isoformat(),
    }


def tile_view(tile: TileReady, feedback: LabelFeedback | None, prediction: dict | None = None,
              fire_start: datetime | None = None) -> dict:
    return {
        "prediction": prediction, "imagery": imagery_view(tile, fire_start),
        "tile_id": tile.tile_id, "url": f"/tiles/{tile.tile_id}", "label": tile.label, "split": tile.split,
        "fire_key": tile.fire_key, "lat": tile.lat, "lon": tile.lon, "provider": tile.provider,
        "feedback": None if feedback is None else {
            "label": feedback.label, "labelled_by": feedback.labelled_by, "note": feedback.note,
            "at": feedback.occurred_at.isoformat()},
    }


def decision_view(d: ModelDecision) -> dict:
    return {
        "event_id": d.event_id, "at": d.occurred_at.isoformat(), "model_name": d.model_name,
        "product": d.product, "product_title": product_title(d.product),
        "candidate_version": d.candidate_version, "champion_version": d.champion_version,
        "decision": d.decision, "refused": d.refused, "reason": d.reason, "basis": d.basis,
        "requested_by": d.requested_by, "command_id": d.command_id,
        "evidence": {
            "n": d.evidence.n, "n_wildfire": d.evidence.n_wildfire, "n_fire_free": d.evidence.n_fire_free,
            "p_value": d.evidence.p_value, "rule": d.evidence.rule, "method": d.evidence.method,
            "deltas": [{"metric": m.metric, "champion": m.champion, "challenger": m.challenger, "delta": m.delta,
                        "ci_low": m.ci_low, "ci_high": m.ci_high, "confidence": m.confidence}
                       for m in d.evidence.deltas]},
        "warnings": list(d.warnings),
    }


def candidate_view(c: ModelCandidate) -> dict:
    return {"model_name": c.model_name, "product": c.product, "product_title": product_title(c.product),
            "version": c.version, "at": c.occurred_at.isoformat(),
            "run_id": c.run_id, "metrics": c.metrics, "backbone_weights": c.backbone_weights,
            "counts": {split: counts.model_dump() for split, counts in c.counts.items()}}


def role_view(role: str, model_name: str, version: str | None, candidate: ModelCandidate | None,
              mlflow_ui: str, product: str = MAPBOX) -> dict | None:
    """Champion, challenger or previous: the version, the product it sees, its MLflow pages and its run's plots."""
    if version is None:
        return None
    ui = mlflow_ui.rstrip("/")
    out = {"role": role, "version": version, "model_name": model_name, "product": product,
           "product_title": product_title(product),
           "mlflow_version_url": f"{ui}/#/models/{quote(model_name, safe='')}/versions/{quote(version, safe='')}",
           "run_id": None, "mlflow_run_url": None, "plots": [], "metrics": {}}
    if candidate is not None:
        run = quote(candidate.run_id, safe="")  # from an event: a path segment, nothing more
        out.update(run_id=candidate.run_id, mlflow_run_url=f"{ui}/#/runs/{run}",
                   metrics=candidate.metrics,
                   plots=[f"/api/runs/{run}/plots/{name}" for name in PLOTS])
    return out
