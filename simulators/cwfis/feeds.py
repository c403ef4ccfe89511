"""Render a season snapshot in the byte formats the real CWFIS feeds use."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime

from simulators.cwfis.season import US_AGENCIES, FireState, to_epsg3978

LEGACY_HEADERS = {
    7: ["agency", "firename", "lat", "lon", "startdate", "hectares", "stage_of_control"],
    8: ["agency", "firename", "lat", "lon", "startdate", "hectares", "stage_of_control", "timezone"],
    9: ["agency", "firename", "lat", "lon", "startdate", "hectares", "stage_of_control", "timezone",
        "response_type"],
}
WFS_COLUMNS = [
    "FID", "id", "agency_code", "region_code", "national_fire_id", "agency_fire_id",
    "national_fire_cause", "fire_type_ics", "severity_nearest_dsr", "fire_was_prescribed",
    "percent_contained", "fire_size", "response_type", "stage_of_control_status",
    "situation_report_date", "status_date", "latitude", "longitude", "geometry", "fire_year",
    "status_year", "record_start", "record_end",
]
ALL_QUIRKS = frozenset({"ragged", "freetext", "blank_dates", "bom", "crlf", "duplicates", "bad_rows"})
# rows no parser can use: coordinates out of range, numbers that are not numbers
BAD_ROWS = (
    ["on", "BAD_LAT_1", "91.5", "-85.1", "2026-05-02 10:00:00", "3", "OC", "EDT", "FUL"],
    ["qc", "BAD_HA_2", "49.1", "-73.2", "2026-05-02 10:00:00", "12,5ha", "OC", "EDT", "FUL"],
    ["bc", "BAD_LON_3", "50.1", "-12O.5", "2026-05-02 10:00:00", "1", "UC", "PDT", "MON"],
)
DEFAULT_QUIRKS = frozenset({"ragged", "freetext", "blank_dates"})


def _num(x: float) -> str:
    return f"{x:g}" if abs(x) < 1e6 else f"{x:.1f}"


def _legacy_stage(s: FireState, quirks: frozenset[str]) -> str:
    a = s.fire.agency
    if "freetext" in quirks:
        if a == "ak":
            return {"OC": "Unstaffed/Uncontaine", "BH": "Staffed/Uncontained",
                    "UC": "Unstaffed/Contained"}.get(s.stage, s.stage)
        if a == "conus":
            pct = {"OC": 5, "BH": 55, "UC": 96}.get(s.stage, 100)
            return f"{pct}% contained"
    return s.stage


def legacy_csv(states: list[FireState], columns: int = 9,
               quirks: frozenset[str] = DEFAULT_QUIRKS) -> bytes:
    """``downloads/activefires/activefires.csv``: ", " separated, no quoting, no final newline.

    Extinguished fires are not listed (the legacy file only carries active fires). Alaska rows stop
    after the stage and CONUS rows after the timezone (ragged, like the real file).
    """
    header = LEGACY_HEADERS[columns]
    lines = [", ".join(header)]
    for s in states:
        if s.stage == "EX":
            continue
        f = s.fire
        blank = "blank_dates" in quirks and f.agency == "conus" and f.index % 3 == 0
        row = [f.agency, f.name, _num(s.lat), _num(s.lon),
               "" if blank else f.start.strftime("%Y-%m-%d %H:%M:%S"), _num(s.hectares),
               _legacy_stage(s, quirks), f.timezone or "GMT", f.response_type]
        row = row[:columns]
        if "ragged" in quirks and f.agency in US_AGENCIES:
            row = row[: min(columns, 7 if f.agency == "ak" else 8)]
        lines.append(", ".join(row))
        if "duplicates" in quirks and f.index % 10 == 0:
            lines.append(", ".join(row))
    if "bad_rows" in quirks:
        lines[1:1] = [", ".join(r[:columns]) for r in BAD_ROWS]
    eol = "\r\n" if "crlf" in quirks else "\n"
    body = eol.join(lines).encode()
    return (b"\xef\xbb\xbf" + body) if "bom" in quirks else body


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S")


def _wfs_row(s: FireState) -> dict[str, object]:
    f = s.fire
    x, y = to_epsg3978(s.lat, s.lon)
    return {
        "FID": f"cwfif_national_activefires.fid-{f.index:08x}",
        "id": 21_000_000 + f.index, "agency_code": f.agency.upper(),
        "region_code": f.region_code, "national_fire_id": f"{f.year}_{f.agency.upper()}_{f.wfs_fire_id}",
        "agency_fire_id": f.wfs_fire_id, "national_fire_cause": f.cause, "fire_type_ics": -1,
        "severity_nearest_dsr": -1, "fire_was_prescribed": 0,
        "percent_contained": 100 if s.stage == "EX" else -1,
        "fire_size": s.hectares, "response_type": f.response_type,
        "stage_of_control_status": s.stage, "situation_report_date": _iso(s.reported_at),
        "status_date": _iso(s.reported_at), "latitude": s.lat, "longitude": s.lon,
        "geometry": f"POINT ({x:.6f} {y:.6f})", "fire_year": f.year, "status_year": f.year,
        "record_start": _iso(s.reported_at), "record_end": "2026-12-31T23:59:59.999".replace(
            "2026", str(f.year)),
        "_xy": (x, y),
    }


def _national(states: list[FireState]) -> list[FireState]:
    return [s for s in states if s.fire.agency not in US_AGENCIES]


def wfs_csv(states: list[FireState]) -> bytes:
    """GeoServer ``outputFormat=csv`` of ``public:cwfif_national_activefires`` (Canada only)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(WFS_COLUMNS)
    for s in _national(states):
        row = _wfs_row(s)
        w.writerow([row[c] for c in WFS_COLUMNS])
    return buf.getvalue().encode()


def wfs_geojson(states: list[FireState], generated_at: datetime) -> bytes:
    """GeoServer ``outputFormat=application/json``: a FeatureCollection in EPSG:3978."""
    features = []
    for s in _national(states):
        row = _wfs_row(s)
        x, y = row.pop("_xy")
        fid = row.pop("FID")
        row.pop("geometry")
        features.append({"type": "Feature", "id": fid, "geometry_name": "geometry",
                         "geometry": {"type": "Point", "coordinates": [round(x, 6), round(y, 6)]},
                         "properties": row})
    doc = {"type": "FeatureCollection", "features": features, "totalFeatures": len(features),
           "numberMatched": len(features), "numberReturned": len(features),
           "timeStamp": generated_at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
           "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::3978"}}}
    return json.dumps(doc, separators=(",", ":")).encode()


def wfs_exception(code: str, text: str) -> bytes:
    """GeoServer's OGC exception report (it answers bad requests with XML)."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?><ows:ExceptionReport xmlns:ows='
        '"http://www.opengis.net/ows/1.1" version="2.0.0"><ows:Exception exceptionCode='
        f'"{code}"><ows:ExceptionText>{text}</ows:ExceptionText></ows:Exception>'
        "</ows:ExceptionReport>"
    ).encode()
