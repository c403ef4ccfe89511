"""What the ingestor works with: fire records, parse results, changes, feed errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

SOURCE_CSV = "cwfis-csv"
SOURCE_WFS = "cwfif-wfs"


@dataclass(slots=True)
class FireRecord:
    """One fire as one feed reports it (after cleaning)."""

    fire_key: str  # {year}_{AGENCY}_{name}: the national fire id where the agency's id is plain
    match: str  # {AGENCY}_{name}: how the two feeds recognise the same fire
    agency: str  # lowercase agency code (ab, bc, ..., pc, ak, conus)
    name: str  # the agency's fire number as the feed spells it
    lat: float
    lon: float
    start_date: datetime | None
    hectares: float | None
    stage: str | None  # OC, BH, UC, EX or the agency's free text
    response_type: str | None
    source: str
    reported_at: datetime | None = None  # WFS record_start
    snapshot_at: datetime | None = None  # set by the ingestor from the feed's snapshot time

    def same_fire_state(self, other: FireRecord) -> bool:
        """True when nothing that makes an ``updated`` event differs (size, stage, position)."""
        return (self.hectares == other.hectares and self.stage == other.stage
                and abs(self.lat - other.lat) < 1e-6 and abs(self.lon - other.lon) < 1e-6)

    def to_dict(self) -> dict[str, Any]:
        return {
            "fire_key": self.fire_key, "match": self.match, "agency": self.agency,
            "name": self.name, "lat": self.lat, "lon": self.lon,
            "start_date": self.start_date.isoformat() if self.start_date else None,
            "hectares": self.hectares, "stage": self.stage, "response_type": self.response_type,
            "source": self.source,
            "reported_at": self.reported_at.isoformat() if self.reported_at else None,
            "snapshot_at": self.snapshot_at.isoformat() if self.snapshot_at else None,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FireRecord:
        def dt(v: str | None) -> datetime | None:
            return datetime.fromisoformat(v) if v else None

        return cls(
            fire_key=d["fire_key"], match=d["match"], agency=d["agency"], name=d["name"],
            lat=d["lat"], lon=d["lon"], start_date=dt(d.get("start_date")),
            hectares=d.get("hectares"), stage=d.get("stage"),
            response_type=d.get("response_type"), source=d["source"],
            reported_at=dt(d.get("reported_at")), snapshot_at=dt(d.get("snapshot_at")),
        )


@dataclass(frozen=True, slots=True)
class Rejection:
    """A row the parser could not use, and why (never dropped silently)."""

    line: int
    reason: str
    detail: str
    raw: str


@dataclass(slots=True)
class ParseResult:
    fires: dict[str, FireRecord]
    rejected: list[Rejection] = field(default_factory=list)
    rows: int = 0  # data rows seen (blank lines excluded)
    duplicates: int = 0  # rows that repeated a fire already seen in the same snapshot
    warnings: dict[str, int] = field(default_factory=dict)  # e.g. bad_start_date: kept, date unset
    layout: str = ""  # e.g. legacy-9, wfs-csv, wfs-geojson
    data_time: datetime | None = None  # newest record_start, when the feed has one

    def rejected_by_reason(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.rejected:
            out[r.reason] = out.get(r.reason, 0) + 1
        return out


@dataclass(frozen=True, slots=True)
class Change:
    change: str  # new | updated | out
    record: FireRecord
    snapshot_at: datetime


class FeedError(Exception):
    """A feed answered with something that is not a usable snapshot."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
