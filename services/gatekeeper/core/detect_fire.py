"""A detection: the champion's probability on a live tile reached the detection threshold.

Pure: the gatekeeper calls it with each live score and publishes what it returns on detections.v1
(the notifier posts it to Discord with feedback buttons).
"""

from __future__ import annotations

from datetime import datetime

from emberwatch.contracts.events import Detection, Label, TileReady


def detection_for(tile: TileReady, *, label: Label, model_name: str, champion_version: str,
                  wildfire_probability: float, threshold: float, producer: str,
                  challenger_version: str | None = None,
                  challenger_probability: float | None = None,
                  occurred_at: datetime | None = None) -> Detection | None:
    """The detection event for ``tile`` when the champion calls it a wildfire, else None.
    ``label`` is the tile's label as the gatekeeper scores it (a person's label wins)."""
    if wildfire_probability < threshold:
        return None
    return Detection.create(
        producer=producer, occurred_at=occurred_at, trace_id=tile.trace_id, tile_id=tile.tile_id, uri=tile.uri,
        lat=tile.lat, lon=tile.lon, fire_key=tile.fire_key, label=label, model_name=model_name,
        product=tile.product, acquired_at=tile.acquired_at, model_version=champion_version,
        wildfire_probability=min(1.0, max(0.0, wildfire_probability)),
        threshold=threshold, challenger_version=challenger_version,
        challenger_probability=(None if challenger_probability is None
                                else min(1.0, max(0.0, challenger_probability))))
