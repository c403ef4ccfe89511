"""Operator actions beside the gate: ``promote(settings, version)`` by hand and ``status(settings)``."""

from __future__ import annotations

from typing import Any

from emberwatch.common.config import Settings
from emberwatch.contracts.envelope import new_id
from emberwatch.contracts.events import Evidence, ModelDecision
from services.gatekeeper.gatekeeper import Gatekeeper
from services.gatekeeper.publish import publish_decisions_sync
from services.gatekeeper.registry import CHALLENGER, CHAMPION
from services.gatekeeper.serving_control import state_lock
from services.gatekeeper.settings import GatekeeperSettings
from services.gatekeeper.triton_repo import head_versions_on_disk
from services.gatekeeper.validate_candidate import validate_loaded


def as_gatekeeper_settings(settings: Settings | None) -> GatekeeperSettings:
    if settings is None:
        return GatekeeperSettings()
    if isinstance(settings, GatekeeperSettings):
        return settings
    return GatekeeperSettings(**settings.model_dump())


def promote(settings: Settings | None, version: str, *, publish: bool = True) -> ModelDecision:
    """Make a registered version the champion by hand (validated first; no shadow, no gate)."""
    s = as_gatekeeper_settings(settings)
    gk = Gatekeeper(s)
    version = str(version)
    with state_lock(s):
        if gk.serving.champion() == version:
            raise ValueError(f"version {version} is already the champion")
        run_id = gk.registry.run_id_of(version)
        if run_id is None:
            raise ValueError(f"{s.model_name} has no registered version {version}")
        work = s.gatekeeper_dir / "manual" / version
        files = gk.registry.download_candidate(run_id, f"runs:/{run_id}/triton", work)
        if int(version) not in head_versions_on_disk(gk.serving.repo):
            gk.serving.add_head(version, files.triton_dir)
        size = int((gk.serving.backbone() or {}).get("image_size", s.image_size))
        report = validate_loaded(gk.serving.triton, version, files.known_images, image_size=size,
                                 tolerance=s.validation_tolerance, max_latency_ms=s.validation_max_latency_ms)
        if not report.ok:
            if version not in gk.serving.roles().values():
                gk.serving.drop_head(version)
            raise ValueError("version failed infra validation: " + "; ".join(report.problems))
        shadow = gk.shadows.load()
        if shadow is not None and shadow.candidate_version == version:
            gk.shadows.clear()
            gk.quality.shadow_ended()
        decision = gk._promote(version, evidence=Evidence(), run_id=run_id,
                               reason="promoted by hand (operator), bypassing the shadow gate", basis="operator")
        # an operator's act, like a rollback: its own event even if this version was promoted before
        decision = decision.model_copy(update={"event_id": new_id()})
    if publish:
        publish_decisions_sync(s, [decision])
    return decision


def status(settings: Settings | None = None) -> dict[str, Any]:
    """Champion, previous, challenger (Triton and MLflow), the champion history, the shadow so far."""
    s = as_gatekeeper_settings(settings)
    gk = Gatekeeper(s)
    roles = gk.serving.roles()
    out: dict[str, Any] = {"model_name": s.model_name, "serving": roles,
                           "history": gk.serving.history(),
                           "backbone": (gk.serving.backbone() or {}).get("backbone_id")}
    try:
        out["aliases"] = {CHAMPION: gk.registry.alias(CHAMPION), CHALLENGER: gk.registry.alias(CHALLENGER)}
    except Exception as exc:  # noqa: BLE001 - status shows what it can
        out["aliases"] = {"error": str(exc)}
    out["loaded"] = {v: gk.serving.triton.ready("head", v) for v in roles.values() if v}
    shadow = gk.shadows.load()
    if shadow is not None:
        counts = shadow.counts()
        out["shadow"] = {"candidate_version": shadow.candidate_version,
                         "champion_version": shadow.champion_version, "n": counts.n,
                         "n_wildfire": counts.n_wildfire, "by_source": shadow.n_by_source(),
                         "needed": {"n": s.gate_min_samples, "n_wildfire": s.gate_min_wildfire_samples}}
    return out
