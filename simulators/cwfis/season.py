"""A deterministic fire season: pure functions of a seed, no I/O, no clock.

Other parts may import this module to know where the simulated fires are, e.g. the Mapbox simulator
draws burn scars there::

    from simulators.cwfis.season import fire_locations
    for loc in fire_locations(seed=7):          # same seed as `emberwatch sim cwfis --seed 7`
        loc.fire_key, loc.lat, loc.lon, loc.start, loc.out

Every fire of the season has a fixed place (a few get one position correction early on), a start,
a final size it grows towards while out of control (OC) and being held (BH), then it is under
control (UC), then extinguished (EX, shown by the WFS for a day), then it is gone. The agency
reports each fire on its own cycle (every 3-12 h), so values change at report times only.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

DEFAULT_SEED = 2026
DEFAULT_FIRES = 1000
SEASON_DAYS = 150
EX_VISIBLE_HOURS = 24


def season_start(year: int) -> datetime:
    return datetime(year, 5, 1, tzinfo=UTC)


# agency: (lat_min, lat_max, lon_min, lon_max, weight, timezone, region codes)
AGENCIES: dict[str, tuple[float, float, float, float, int, str, tuple[str, ...]]] = {
    "bc": (49.2, 58.5, -127.0, -115.5, 20, "PDT", ("G5", "G7", "K5", "K7", "C3", "C4", "N5", "V3")),
    "ab": (53.0, 59.5, -119.5, -110.5, 15, "MDT", ("HWF", "PWF", "SWF", "LWF", "EWF", "GWF")),
    "sk": (54.0, 59.5, -109.0, -102.5, 10, "CST", ("LA", "PA", "HU")),
    "mb": (51.0, 58.5, -101.0, -95.5, 8, "CDT", ("EA", "NO", "WE")),
    "on": (46.5, 52.5, -94.0, -80.5, 14, "EDT", ("SUD", "TIM", "RED", "NIP")),
    "qc": (47.0, 53.0, -79.0, -66.5, 12, "EDT", ("01", "02", "03")),
    "nt": (60.2, 66.0, -125.0, -111.0, 10, "MDT", ("ZF", "SS", "FS")),
    "yt": (60.2, 65.5, -139.0, -130.0, 5, "MST", ("BC", "WR", "DA")),
    "nl": (47.8, 53.5, -60.5, -54.0, 2, "NDT", ("LB",)),
    "nb": (45.6, 47.8, -67.7, -64.8, 2, "ADT", ("NB",)),
    "ns": (44.3, 46.5, -65.5, -61.8, 1, "ADT", ("05",)),
    "pc": (58.6, 59.9, -114.0, -112.2, 2, "MDT", ("WB",)),
    "ak": (60.5, 66.0, -155.0, -141.5, 3, "", ("AK",)),
    "conus": (40.5, 48.5, -123.5, -110.5, 3, "GMT", ("UNF",)),
}
US_AGENCIES = frozenset({"ak", "conus"})
_AK_WORDS = ("Icy Bay", "Delta Creek", "Tanana", "Kobuk", "Nenana", "Chena", "Koyukuk", "Birch Hill")
_US_WORDS = ("Ridge", "Chilcoot", "Cedar", "Pine Gulch", "Rock Creek", "Bear Wallow", "Elk Flat")


@dataclass(frozen=True)
class SeasonFire:
    index: int
    agency: str  # lowercase legacy code: bc, ab, ..., ak, conus
    name: str  # the agency's fire number (legacy CSV spelling)
    region_code: str
    lat: float
    lon: float
    start: datetime
    report_every_h: int
    oc_h: int  # hours out of control
    bh_h: int  # hours being held
    uc_h: int  # hours under control, then EX
    final_hectares: float
    correction: tuple[float, float] | None  # position correction applied from the 2nd report on
    cause: str
    response_type: str
    timezone: str

    @property
    def year(self) -> int:
        return self.start.year

    @property
    def out(self) -> datetime:
        """When the fire is extinguished (stage EX)."""
        return self.start + timedelta(hours=self.oc_h + self.bh_h + self.uc_h)

    @property
    def fire_key(self) -> str:
        """The key the ingestor gives this fire: ``{year}_{AGENCY}_{NAME}``."""
        return f"{self.year}_{self.agency.upper()}_{self.name.upper()}"

    @property
    def wfs_fire_id(self) -> str:
        """The agency fire id as the CWFIF WFS spells it (BC prefixes the year, MB the agency)."""
        if self.agency == "bc":
            return f"{self.year}-{self.name}"
        if self.agency == "mb":
            return f"MB-{self.name}"
        return self.name


@dataclass(frozen=True)
class FireState:
    """One fire as the feeds report it at a moment."""

    fire: SeasonFire
    reported_at: datetime  # the agency's last report (record_start in the WFS)
    lat: float
    lon: float
    hectares: float
    stage: str  # OC, BH, UC or EX


@dataclass(frozen=True)
class FireLocation:
    fire_key: str
    agency: str
    name: str
    lat: float
    lon: float
    start: datetime
    out: datetime


def _name(rng: random.Random, agency: str, region: str, index: int, year: int) -> str:
    yy = year % 100
    n = index + 1
    if agency == "bc":
        return f"{region[0]}{region[1]}{n:04d}"
    if agency == "ab":
        return f"{region}-{n:03d}-{year}"
    if agency == "sk":
        return f"{yy}{region}-F{n:03d}"
    if agency in ("mb", "nt"):
        return f"{region}{n:03d}" if agency == "mb" else f"{region}{n:03d}-{yy}"
    if agency == "on":
        return f"{region}_FIRE_{n:03d}"
    if agency == "yt":
        return f"{year}{region}{n:03d}"
    if agency == "pc":
        return f"{year}{region}{n}"
    if agency == "ns":
        return f"{region}-{n:03d}-{year}"
    if agency == "ak":
        return f"{rng.choice(_AK_WORDS)} {n}"
    if agency == "conus":
        return f"{year} {rng.choice(_US_WORDS)} {n} - ORUPF"
    return f"{n:03d}"  # qc, nl, nb: plain numbers


@lru_cache(maxsize=16)
def season_fires(seed: int = DEFAULT_SEED, n_fires: int = DEFAULT_FIRES,
                 year: int = 2026) -> tuple[SeasonFire, ...]:
    """Every fire of the season for ``seed``: the same arguments always give the same fires."""
    rng = random.Random(f"cwfis-season:{seed}:{n_fires}:{year}")
    agencies = list(AGENCIES)
    weights = [AGENCIES[a][4] for a in agencies]
    start0 = season_start(year)
    fires = []
    for i in range(n_fires):
        agency = rng.choices(agencies, weights)[0]
        lat0, lat1, lon0, lon1, _, tz, regions = AGENCIES[agency]
        region = rng.choice(regions)
        start = start0 + timedelta(minutes=rng.randrange(SEASON_DAYS * 24 * 60))
        final = round(min(250_000.0, rng.lognormvariate(2.5, 2.2)), 1)
        corr = None
        if rng.random() < 0.15:
            corr = (round(rng.uniform(-0.03, 0.03), 4), round(rng.uniform(-0.03, 0.03), 4))
        fires.append(SeasonFire(
            index=i, agency=agency, name=_name(rng, agency, region, i, year), region_code=region,
            lat=round(rng.uniform(lat0, lat1), 4), lon=round(rng.uniform(lon0, lon1), 4),
            start=start, report_every_h=rng.choice((3, 4, 6, 6, 8, 12)),
            oc_h=int(rng.lognormvariate(3.8, 0.8)) + 2, bh_h=int(rng.lognormvariate(3.5, 0.7)) + 2,
            uc_h=int(rng.lognormvariate(4.2, 0.6)) + 6, final_hectares=max(0.01, final),
            correction=corr, cause=rng.choice("NNHHU"), response_type=rng.choice(
                ("FUL", "FUL", "MOD", "MON", "MON")), timezone=tz,
        ))
    return tuple(fires)


def fire_locations(seed: int = DEFAULT_SEED, n_fires: int = DEFAULT_FIRES,
                   year: int = 2026) -> list[FireLocation]:
    """Where the season's fires burn (final position), for other simulators. Pure and deterministic."""
    out = []
    for f in season_fires(seed, n_fires, year):
        dlat, dlon = f.correction or (0.0, 0.0)
        out.append(FireLocation(f.fire_key, f.agency, f.name, round(f.lat + dlat, 4),
                                round(f.lon + dlon, 4), f.start, f.out))
    return out


def _size_at(f: SeasonFire, age_h: float) -> float:
    tau = max(1.0, (f.oc_h + f.bh_h) / 3.0)
    grown = f.final_hectares * (1.0 - math.exp(-min(age_h, f.oc_h + f.bh_h) / tau))
    return round(max(0.01, grown), 2 if grown < 10 else 1)


def fire_state(f: SeasonFire, at: datetime) -> FireState | None:
    """The fire as reported at ``at``; None before it starts and once EX has been shown a day."""
    if at < f.start:
        return None
    age_h = (at - f.start).total_seconds() / 3600.0
    ex_h = f.oc_h + f.bh_h + f.uc_h
    if age_h >= ex_h + EX_VISIBLE_HOURS:
        return None
    if age_h >= ex_h:  # extinguished: the report says EX at the moment it went out
        report_h = float(ex_h)
    else:
        report_h = (age_h // f.report_every_h) * f.report_every_h
    if report_h < f.oc_h:
        stage = "OC"
    elif report_h < f.oc_h + f.bh_h:
        stage = "BH"
    elif report_h < ex_h:
        stage = "UC"
    else:
        stage = "EX"
    lat, lon = f.lat, f.lon
    if f.correction and report_h >= f.report_every_h:
        lat, lon = round(lat + f.correction[0], 4), round(lon + f.correction[1], 4)
    return FireState(fire=f, reported_at=f.start + timedelta(hours=report_h), lat=lat, lon=lon,
                     hectares=_size_at(f, report_h), stage=stage)


def snapshot(seed: int, at: datetime, n_fires: int = DEFAULT_FIRES,
             year: int | None = None) -> list[FireState]:
    """Every fire the feeds report at ``at`` (taken on the hour, like the hourly feed)."""
    at = at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    fires = season_fires(seed, n_fires, year or at.year)
    return [s for f in fires if (s := fire_state(f, at)) is not None]


# --- EPSG:3978 (NAD83 / Canada Atlas Lambert), the WFS geometry's CRS --------------------------
_A = 6378137.0
_F = 1 / 298.257222101
_E = math.sqrt(2 * _F - _F * _F)


def _m(phi: float) -> float:
    return math.cos(phi) / math.sqrt(1 - (_E * math.sin(phi)) ** 2)


def _t(phi: float) -> float:
    es = _E * math.sin(phi)
    return math.tan(math.pi / 4 - phi / 2) / ((1 - es) / (1 + es)) ** (_E / 2)


_P1, _P2, _P0, _L0 = (math.radians(v) for v in (49.0, 77.0, 49.0, -95.0))
_N = (math.log(_m(_P1)) - math.log(_m(_P2))) / (math.log(_t(_P1)) - math.log(_t(_P2)))
_FF = _m(_P1) / (_N * _t(_P1) ** _N)
_RHO0 = _A * _FF * _t(_P0) ** _N


def to_epsg3978(lat: float, lon: float) -> tuple[float, float]:
    """Project WGS84/NAD83 degrees to Canada Atlas Lambert metres."""
    rho = _A * _FF * _t(math.radians(lat)) ** _N
    theta = _N * (math.radians(lon) - _L0)
    return rho * math.sin(theta), _RHO0 - rho * math.cos(theta)
