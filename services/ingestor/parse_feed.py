"""Parse the CWFIS feeds as they really are.

Legacy ``activefires.csv``: ", " separator, a header that grew from 7 to 8 to 9 columns, ragged
rows (Alaska rows stop after the stage, CONUS rows after the timezone), blank start dates, free-text
stages, maybe a BOM, CRLF line ends and repeated rows. CWFIF WFS: CSV (also as re-saved by pandas,
and the older ``activefires_current`` layer with its own column names) or GeoJSON; ``-1`` means
"not reported"; rows are versioned (``record_start``), the newest version of a fire wins.

A row that cannot be used is rejected with a reason (``Rejection``); a body that is not a feed at
all (an HTML error page, an XML exception, garbage, a truncated GeoJSON) raises ``FeedError``.

Text fields are data from outside: each is put in NFC with its control and bidi formatting characters
removed (``plain_text``; HTML stays as the characters it is, every reader shows it as text), and
capped at ``max_text_chars``: a longer agency, fire name or national id refuses the row
(``text_too_long``: they make the fire's key, and a cut key could merge two fires or miss the same fire
in the other feed), a longer stage or response type is cut and marked ``…`` (descriptive only; the
fire itself is sound). Both are counted.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from emberwatch.common.plain_text import plain_text
from services.ingestor.models import (
    SOURCE_CSV,
    SOURCE_WFS,
    FeedError,
    FireRecord,
    ParseResult,
    Rejection,
)

# column aliases across feed generations and layers -> canonical field
ALIASES: dict[str, str] = {
    "agency": "agency", "agency_code": "agency",
    "firename": "name", "fire_name": "name", "agency_fire_id": "name",
    "national_fire_id": "national_id",
    "lat": "lat", "latitude": "lat",
    "lon": "lon", "long": "lon", "longitude": "lon",
    "startdate": "start", "start_date": "start", "fire_start_date": "start",
    "hectares": "hectares", "fire_size": "hectares",
    "stage_of_control": "stage", "stage_of_control_status": "stage",
    "timezone": "timezone", "response_type": "response_type",
    "record_start": "reported", "fire_year": "year",
}
STAGE_CODES = {"OC", "BH", "UC", "EX", "OUT", "PR", "MO", "UCP"}
NOT_REPORTED = {"", "-1", "-1.0", "null", "None", "NaN", "nan"}
_YEAR_PREFIX = re.compile(r"^(?:19|20)\d\d-")
_SPACES = re.compile(r"\s+")
MAX_RAW = 200
MAX_TEXT = 200  # characters of one text field (EMBERWATCH_INGESTOR_MAX_TEXT_CHARS)


def norm_name(agency_upper: str, name: str) -> str:
    """The agency's fire number, spelled the same way by both feeds.

    The WFS prefixes BC numbers with the year (``2026-G51747``) and MB numbers with the agency
    (``MB-EA037``); the legacy CSV does not (``G51747``, ``EA037``).
    """
    n = _SPACES.sub(" ", name.strip()).upper()
    n = _YEAR_PREFIX.sub("", n, count=1)
    prefix = agency_upper + "-"
    if n.startswith(prefix) and len(n) > len(prefix):
        n = n[len(prefix):]
    return n


def decode(body: bytes) -> str:
    """Bytes to text, BOM stripped; an HTML/XML page or binary garbage raises FeedError."""
    if not body or not body.strip():
        raise FeedError("empty", "the feed answered with an empty body")
    if body.startswith(b"\xef\xbb\xbf"):
        body = body[3:]
    head = body[:512].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        raise FeedError("html_page", f"the feed answered with an HTML page: {_excerpt(body)}")
    if head.startswith(b"<?xml") or head.startswith(b"<"):
        kind = "xml_exception" if b"exception" in body[:4096].lower() else "xml"
        raise FeedError(kind, f"the feed answered with XML, not data: {_excerpt(body)}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = body.decode("cp1252", errors="replace")
    bad = sum(1 for ch in text[:65536] if ch == "\ufffd" or (ch < " " and ch not in "\r\n\t"))
    if bad > max(3, len(text[:65536]) // 200):
        raise FeedError("garbage", f"the body is not text ({bad} control/undecodable characters)")
    return text


def _excerpt(body: bytes) -> str:
    text = body[:160].decode("utf-8", errors="replace")
    return _SPACES.sub(" ", re.sub(r"<[^>]*>", " ", text)).strip()[:120]


def _float(value: str) -> float:
    x = float(value)
    if not math.isfinite(x):
        raise ValueError(f"not finite: {value}")
    return x


def _datetime(value: str) -> datetime:
    dt = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


class _RowParser:
    """Turns rows (sequences of strings, or dicts) into FireRecords, collecting what it rejects."""

    def __init__(self, columns: Sequence[str], source: str, layout: str, default_year: int,
                 max_text: int = MAX_TEXT) -> None:
        self.source, self.default_year, self.max_text = source, default_year, max_text
        self.idx: dict[str, int] = {}
        for i, col in enumerate(columns):
            canonical = ALIASES.get(col.strip().lower().lstrip("\ufeff"))
            if canonical and canonical not in self.idx:
                self.idx[canonical] = i
        if "lat" not in self.idx or "lon" not in self.idx:
            raise FeedError("bad_header", f"no latitude/longitude columns in header {list(columns)[:12]}")
        self.anonymous = "name" not in self.idx and "national_id" not in self.idx
        self.ncols = len(columns)
        self.result = ParseResult(fires={}, layout=layout)

    def _get(self, row: Sequence[str], field: str) -> str:
        i = self.idx.get(field)
        if i is None or i >= len(row):
            return ""
        v = row[i]
        return v.strip() if v else ""

    def _text(self, row: Sequence[str], field: str) -> str:
        """A text field as plain text: NFC, no control or bidi formatting characters, one line."""
        raw = self._get(row, field)
        text = plain_text(raw).strip()
        if text != raw:
            self.warn("text_cleaned")
        return text

    def _cut(self, text: str | None) -> str | None:
        """A descriptive field cut to ``max_text`` characters (marked …)."""
        if text is None or len(text) <= self.max_text:
            return text
        self.warn("text_truncated")
        return text[:self.max_text - 1] + "…"

    def reject(self, line: int, reason: str, detail: str, row: Iterable[str]) -> None:
        raw = ", ".join(str(v) for v in row)[:MAX_RAW]
        self.result.rejected.append(Rejection(line, reason, detail, raw))

    def warn(self, kind: str) -> None:
        self.result.warnings[kind] = self.result.warnings.get(kind, 0) + 1

    def add(self, line: int, row: Sequence[str]) -> None:
        res = self.result
        res.rows += 1
        get = self._get
        lat_s, lon_s = get(row, "lat"), get(row, "lon")
        if lat_s in NOT_REPORTED or lon_s in NOT_REPORTED:
            return self.reject(line, "missing_coordinates", "latitude or longitude is blank", row)
        try:
            lat = _float(lat_s)
        except ValueError:
            return self.reject(line, "bad_latitude", f"latitude {lat_s[:40]!r} is not a number", row)
        try:
            lon = _float(lon_s)
        except ValueError:
            return self.reject(line, "bad_longitude", f"longitude {lon_s[:40]!r} is not a number", row)
        if not -90.0 <= lat <= 90.0:
            return self.reject(line, "latitude_out_of_range", f"latitude {lat} not in [-90, 90]", row)
        if not -180.0 <= lon <= 180.0:
            return self.reject(line, "longitude_out_of_range", f"longitude {lon} not in [-180, 180]", row)
        if lat == 0.0 and lon == 0.0:
            return self.reject(line, "null_island", "coordinates are 0, 0", row)
        ha_s = get(row, "hectares")
        hectares: float | None = None
        if ha_s not in NOT_REPORTED:
            try:
                hectares = _float(ha_s)
            except ValueError:
                return self.reject(line, "bad_hectares", f"hectares {ha_s[:40]!r} is not a number", row)
            if hectares < 0:
                return self.reject(line, "bad_hectares", f"hectares {hectares} is negative", row)
        stage: str | None = self._cut(self._text(row, "stage"))
        if stage in NOT_REPORTED:
            stage = None
        elif stage.upper() in STAGE_CODES:
            stage = stage.upper()
        start = None
        start_s = get(row, "start")
        if start_s not in NOT_REPORTED:
            try:
                start = _datetime(start_s)
            except ValueError:
                self.warn("bad_start_date")
        reported = None
        rep_s = get(row, "reported")
        if rep_s not in NOT_REPORTED:
            try:
                reported = _datetime(rep_s)
            except ValueError:
                self.warn("bad_record_start")
        response = self._text(row, "response_type")
        response = None if response in NOT_REPORTED else self._cut(response)
        agency_s, name = self._text(row, "agency"), self._text(row, "name")
        national = self._text(row, "national_id")
        for label, value in (("agency", agency_s), ("fire name", name), ("national fire id", national)):
            if len(value) > self.max_text:
                return self.reject(line, "text_too_long", f"the {label} has {len(value)} characters (at most "
                                                          f"{self.max_text})", row)
        if national in NOT_REPORTED:
            national = ""
        if not agency_s and national.count("_") >= 2:
            agency_s = national.split("_")[1]
        if not name and national.count("_") >= 2:
            name = national.split("_", 2)[2]
        year_s = get(row, "year")
        year = None
        if year_s.isdigit() and 1900 < int(year_s) < 3000:
            year = int(year_s)
        elif start is not None:
            year = start.year
        elif national[:4].isdigit():
            year = int(national[:4])
        else:
            year = self.default_year
        if self.anonymous:
            # a layer without any fire identity (e.g. activefires_current re-saved with a subset of
            # columns): the position is the only stable identity it offers
            agency = agency_s.lower() or "unknown"
            name = f"{lat:.4f},{lon:.4f}"
            match = f"POS_{name}"
            key = f"{year}_POS_{lat:.4f}_{lon:.4f}"
        else:
            if not agency_s or not name:
                return self.reject(line, "missing_identity", "agency or fire name is blank", row)
            agency = agency_s.lower()
            au = agency_s.upper()
            match = f"{au}_{norm_name(au, name)}"
            key = f"{year}_{match}"
        rec = FireRecord(key, match, agency, name, lat, lon, start, hectares, stage, response,
                         self.source, reported)
        if reported is not None and (res.data_time is None or reported > res.data_time):
            res.data_time = reported
        prev = res.fires.get(key)
        if prev is not None:
            res.duplicates += 1
            # versioned WFS rows: the newest record wins; otherwise the later row wins
            if prev.reported_at and reported and prev.reported_at > reported:
                return None
        res.fires[key] = rec
        return None


def parse_legacy_csv(body: bytes, default_year: int | None = None, max_text_chars: int = MAX_TEXT) -> ParseResult:
    """The legacy ``activefires.csv`` (7, 8 or 9 header columns, or more to come).

    Fields are separated by ", " and never quoted, so a value with a bare comma in it (``12,5``)
    stays one field; a header written with plain commas is read as ordinary CSV.
    """
    text = decode(body)
    lines = text.splitlines()
    first = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    if first is None:
        raise FeedError("empty", "the feed has no header line")
    header_line = lines[first]
    if ", " in header_line:
        def split(line: str) -> list[str]:
            return line.split(", ")
    else:
        def split(line: str) -> list[str]:
            return next(csv.reader([line], skipinitialspace=True), [])
    header = split(header_line)
    cols = [h.strip().lower().lstrip("\ufeff") for h in header]
    if "agency" not in cols or "firename" not in cols:
        raise FeedError("bad_header", f"not an activefires.csv header: {header_line[:200]!r}")
    p = _RowParser(cols, SOURCE_CSV, f"legacy-{len(cols)}", default_year or datetime.now(UTC).year, max_text_chars)
    name_i = cols.index("firename")
    ncols = len(cols)
    min_fields = min(7, ncols)
    for n in range(first + 1, len(lines)):
        line = lines[n]
        if not line.strip():
            continue
        row = split(line)
        if len(row) > ncols:
            # a fire name with ", " in it splits into extra fields: glue them back
            extra = len(row) - ncols
            row = row[:name_i] + [", ".join(row[name_i:name_i + extra + 1])] + row[name_i + extra + 1:]
        if len(row) < min_fields:
            # the shortest real rows (Alaska) stop after the stage; fewer is a cut-off row
            p.result.rows += 1
            p.reject(n + 1, "too_few_fields", f"{len(row)} fields, need at least {min_fields}", row)
            continue
        p.add(n + 1, row)
    return p.result


def parse_wfs_csv(body: bytes, default_year: int | None = None, max_text_chars: int = MAX_TEXT) -> ParseResult:
    """GeoServer WFS ``outputFormat=csv`` (also pandas re-saves and the older layer's columns)."""
    text = decode(body)
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if not header:
        raise FeedError("empty", "the feed has no header line")
    p = _RowParser(header, SOURCE_WFS, "wfs-csv", default_year or datetime.now(UTC).year, max_text_chars)
    ncols = len(header)
    for row in reader:
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) != ncols:
            p.result.rows += 1
            p.reject(reader.line_num, "wrong_field_count", f"{len(row)} fields, header has {ncols}", row)
            continue
        p.add(reader.line_num, row)
    return p.result


def parse_wfs_geojson(body: bytes, default_year: int | None = None, max_text_chars: int = MAX_TEXT) -> ParseResult:
    """GeoServer WFS ``outputFormat=application/json``: a FeatureCollection."""
    text = decode(body)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FeedError("bad_json", f"the GeoJSON does not parse ({exc.msg} at {exc.pos} of "
                                    f"{len(text)} characters): truncated or corrupt") from None
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection" or not isinstance(
            doc.get("features"), list):
        raise FeedError("bad_json", "the JSON is not a GeoJSON FeatureCollection")
    features = doc["features"]
    returned = doc.get("numberReturned")
    if isinstance(returned, int) and returned != len(features):
        raise FeedError("truncated", f"numberReturned={returned} but {len(features)} features")
    crs = str(((doc.get("crs") or {}).get("properties") or {}).get("name", "")).upper()
    degrees = not crs or "4326" in crs or "CRS84" in crs
    keys: list[str] = []
    for f in features:
        if isinstance(f, dict) and isinstance(f.get("properties"), dict):
            keys = list(f["properties"])
            break
    columns = keys + [k for k in ("latitude", "longitude") if k not in keys]
    p = _RowParser(columns, SOURCE_WFS, "wfs-geojson", default_year or datetime.now(UTC).year, max_text_chars)
    lat_i, lon_i = p.idx["lat"], p.idx["lon"]
    for n, f in enumerate(features, start=1):
        props = f.get("properties") if isinstance(f, dict) else None
        if not isinstance(props, dict):
            p.result.rows += 1
            p.reject(n, "bad_feature", "a feature without properties", [str(f)[:MAX_RAW]])
            continue
        row = ["" if (v := props.get(k)) is None else str(v) for k in keys]
        row += [""] * (len(columns) - len(row))
        if (row[lat_i] in NOT_REPORTED or row[lon_i] in NOT_REPORTED) and degrees:
            coords = (f.get("geometry") or {}).get("coordinates")
            if isinstance(coords, list) and len(coords) >= 2:
                row[lon_i], row[lat_i] = str(coords[0]), str(coords[1])
        p.add(n, row)
    return p.result


PARSERS = {"legacy-csv": parse_legacy_csv, "wfs-csv": parse_wfs_csv, "wfs-geojson": parse_wfs_geojson}


def parse(kind: str, body: bytes, default_year: int | None = None, max_text_chars: int = MAX_TEXT) -> ParseResult:
    return PARSERS[kind](body, default_year, max_text_chars)
