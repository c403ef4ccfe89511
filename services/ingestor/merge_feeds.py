"""One fire, one record: merge what the two feeds say about the same fire.

The feeds recognise a fire by agency + fire number (legacy ``agency``+``firename`` = WFS
``agency_code``+``agency_fire_id``, spelled alike by ``parse_feed.norm_name``). The preferred feed
(the CWFIF WFS, the current official source) gives the values; the other fills what it lacks
(the WFS has no start date, the legacy CSV has it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from services.ingestor.models import SOURCE_WFS, FireRecord

_FILL = ("start_date", "hectares", "stage", "response_type")


def merge_feeds(snapshots: Mapping[str, Mapping[str, FireRecord]],
                prefer: str = SOURCE_WFS) -> dict[str, FireRecord]:
    """``{source: {fire_key: record}}`` -> ``{fire_key: record}`` with each fire once."""
    if len(snapshots) == 1:
        return dict(next(iter(snapshots.values())))
    order = sorted(snapshots, key=lambda s: s != prefer)  # preferred source first
    by_match: dict[str, FireRecord] = {}
    for source in order:
        for rec in snapshots[source].values():
            have = by_match.get(rec.match)
            if have is None:
                by_match[rec.match] = rec
                continue
            fill = {f: getattr(rec, f) for f in _FILL
                    if getattr(have, f) is None and getattr(rec, f) is not None}
            if fill:
                by_match[rec.match] = replace(have, **fill)
    return {rec.fire_key: rec for rec in by_match.values()}
