"""Opt-in: every real CWFIS snapshot in $EMBERWATCH_FIXTURES_DIR/cwfis parses, nothing unexplained."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from services.ingestor.parse_feed import parse

pytestmark = pytest.mark.fixtures


def _files() -> list[Path]:
    root = os.environ.get("EMBERWATCH_FIXTURES_DIR")
    if not root:
        return []
    return sorted(p for p in (Path(root) / "cwfis").iterdir() if p.is_file())


def _kind(path: Path) -> str:
    head = path.read_bytes()[:200].lstrip(b"\xef\xbb\xbf").lower()
    if path.suffix in (".json", ".geojson"):
        return "wfs-geojson"
    if head.startswith(b"agency, firename") or head.startswith(b"agency,firename"):
        return "legacy-csv"
    return "wfs-csv"  # GeoServer CSV exports (the two re-saved by pandas included)


@pytest.mark.skipif(not os.environ.get("EMBERWATCH_FIXTURES_DIR"),
                    reason="set EMBERWATCH_FIXTURES_DIR to a folder of recorded responses")
def test_every_real_snapshot_parses_and_every_rejection_is_explained():
    files = _files()
    assert len(files) >= 4
    for path in files:
        result = parse(_kind(path), path.read_bytes(), default_year=2026)
        accounted = len(result.fires) + result.duplicates + len(result.rejected)
        assert result.rows == accounted, f"{path.name}: {result.rows} rows, {accounted} accounted for"
        assert result.fires, path.name
        for rej in result.rejected:
            assert rej.reason and rej.detail and rej.line > 0, (path.name, rej)
        assert len(result.rejected) <= 0.05 * result.rows, (path.name, result.rejected_by_reason())
        for fire in result.fires.values():
            assert -90 <= fire.lat <= 90 and -180 <= fire.lon <= 180
            assert fire.hectares is None or fire.hectares >= 0
