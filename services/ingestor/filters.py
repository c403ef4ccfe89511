"""Which fires the ingestor tracks: by agency, by region (bounding box), by start date (daydelta)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from services.ingestor.models import FireRecord


@dataclass(frozen=True)
class FireFilter:
    agencies: frozenset[str] = frozenset()  # lowercase codes; empty = all
    bbox: tuple[float, float, float, float] | None = None  # min_lon, min_lat, max_lon, max_lat
    daydelta: int = 0  # 0 = no limit

    @classmethod
    def from_settings(cls, agencies: str, bbox: str, daydelta: int) -> FireFilter:
        codes = frozenset(a.strip().lower() for a in agencies.split(",") if a.strip())
        box = None
        if bbox.strip():
            parts = [float(v) for v in bbox.split(",")]
            if len(parts) != 4 or parts[0] > parts[2] or parts[1] > parts[3]:
                raise ValueError("bbox must be min_lon,min_lat,max_lon,max_lat")
            box = (parts[0], parts[1], parts[2], parts[3])
        return cls(codes, box, max(0, daydelta))

    def in_scope(self, rec: FireRecord) -> bool:
        """Agency and region: a fire outside them is never tracked."""
        if self.agencies and rec.agency not in self.agencies:
            return False
        if self.bbox is not None:
            x0, y0, x1, y1 = self.bbox
            if not (x0 <= rec.lon <= x1 and y0 <= rec.lat <= y1):
                return False
        return True

    def admits(self, rec: FireRecord, now: datetime) -> bool:
        """Start tracking this fire? ``daydelta`` applies to new fires only: a tracked fire is not
        dropped because it grows old. ``now`` is the snapshot's time (deterministic)."""
        if not self.in_scope(rec):
            return False
        if self.daydelta and rec.start_date is not None:
            return rec.start_date >= now - timedelta(days=self.daydelta)
        return True
