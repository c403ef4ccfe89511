"""Fire-to-prediction latency: from the ingestor first seeing a fire to the champion's prediction on
the fire's own tile, the figure an operator waits on. Exported as
``emberwatch_fire_to_prediction_seconds`` (pipeline dashboard, p50 and p95)."""

from __future__ import annotations

from datetime import UTC, datetime

from emberwatch.contracts.events import TileReady
from services.gatekeeper.metrics import FIRE_TO_PREDICTION


def observe_fire_to_prediction(tile: TileReady, now: datetime | None = None) -> float | None:
    """Record the latency of ``tile``'s fire if it is the fire's own tile (not a fire-free match)
    and carries when the fire was first seen. Returns the seconds recorded, or None."""
    if tile.label != "wildfire" or tile.fire_observed_at is None:
        return None
    seconds = ((now or datetime.now(UTC)) - tile.fire_observed_at).total_seconds()
    if seconds < 0:  # two machines' clocks disagree: no figure rather than a wrong one
        return None
    FIRE_TO_PREDICTION.observe(seconds)
    return seconds
