"""Operator actions on the served model: show it, promote a version by hand, roll back.

They run the gatekeeper's own procedures (validation in Triton, atomic switch of the serving
version, MLflow aliases, a ``models.decisions.v1`` event), so a promotion by hand follows the same
path as one on evidence. They need what the gatekeeper needs: Triton's model repository on this
filesystem, Triton, MLflow and Kafka. The CLI and the Discord bot's /promote and /rollback call them.
"""

from __future__ import annotations

from typing import Any

from emberwatch.common.config import Settings, get_settings


def champion_status(settings: Settings | None = None) -> dict[str, Any]:
    from services.gatekeeper.promote import status

    return status(settings or get_settings())


def promote(version: str, requested_by: str | None = None, settings: Settings | None = None) -> str:
    from services.gatekeeper.promote import promote as promote_version

    decision = promote_version(settings or get_settings(), str(version))
    who = f" (requested by {requested_by})" if requested_by else ""
    return f"version {decision.candidate_version}: {decision.decision}{who} — {decision.reason}"


def rollback(requested_by: str | None = None, settings: Settings | None = None) -> str:
    from services.gatekeeper.rollback import rollback as rollback_champion

    decision = rollback_champion(settings or get_settings())
    who = f" (requested by {requested_by})" if requested_by else ""
    return (f"rolled back from version {decision.candidate_version} to {decision.champion_version}{who}"
            f" — {decision.reason}")
