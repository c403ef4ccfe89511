"""The simulated Sentinel-2 world: granules, acquisition dates and per-band reflectance of each scene.

Granules are 13 km squares of a 10 km UTM grid (1.5 km of overlap each side, as real granules overlap),
so a fire's 2.24 km box always lies wholly inside the granule whose core holds its centre. Each granule is
seen every 5 days (its phase from its UTM column) at 10:30 local solar time, and catalogued 3 to 10 hours
later. A scene's land cover (forest, bare soil, water) is fixed per granule; its clouds (none, scattered
or overcast, with cirrus and shadows) are drawn per acquisition. Fires: a burn scar growing to its
hectares over ``growth_h`` after its start (dark in NIR, bright in SWIR) and, while it burns, an active
front on the scar's edge saturating B12. Everything is deterministic in (granule, date, fires).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from affine import Affine
from rasterio.warp import transform as warp_transform

GRID_M = 10_000
MARGIN_M = 1_500
SIDE_M = GRID_M + 2 * MARGIN_M
PIXEL_M = 10
SIZE_PX = SIDE_M // PIXEL_M  # 1300 at 10 m; 650 at 20 m
REVISIT_DAYS = 5
EPOCH = datetime(2015, 6, 23, tzinfo=UTC)  # Sentinel-2A's launch: day 0 of the revisit cycle
DN_SCALE, DN_OFFSET, DN_MAX = 0.0001, -0.1, 32767  # baseline 05.xx: reflectance = DN * 1e-4 - 0.1

# Band -> (resolution m, reflectance of forest, bare soil, water, burn scar, cloud, active flame)
BANDS: dict[str, tuple[int, tuple[float, ...]]] = {
    "blue": (10, (0.03, 0.08, 0.05, 0.04, 0.55, 0.08)),
    "green": (10, (0.06, 0.11, 0.05, 0.05, 0.56, 0.10)),
    "red": (10, (0.04, 0.14, 0.03, 0.06, 0.57, 0.15)),
    "nir": (10, (0.33, 0.24, 0.02, 0.10, 0.60, 0.25)),
    "nir08": (20, (0.35, 0.25, 0.02, 0.10, 0.60, 0.25)),
    "swir16": (20, (0.18, 0.30, 0.01, 0.22, 0.45, 0.60)),
    "swir22": (20, (0.08, 0.24, 0.01, 0.25, 0.35, 99.0)),  # 99: the flame saturates B12
}
FOREST, SOIL, WATER = 0, 1, 2
SCL_OF_COVER = {FOREST: 4, SOIL: 5, WATER: 6}


@dataclass(frozen=True)
class Fire:
    lat: float
    lon: float
    hectares: float
    start: datetime
    end: datetime | None = None
    growth_h: float = 72.0


@dataclass(frozen=True)
class Granule:
    zone: int
    north: bool
    gx: int
    gy: int

    @property
    def epsg(self) -> int:
        return (32600 if self.north else 32700) + self.zone

    @property
    def transform(self) -> Affine:
        return Affine(PIXEL_M, 0, self.gx * GRID_M - MARGIN_M, 0, -PIXEL_M, (self.gy + 1) * GRID_M + MARGIN_M)

    @property
    def tile_code(self) -> str:
        """An MGRS-like code (zone, latitude band, two letters from the grid indices) for scene ids."""
        letters = "ABCDEFGHJKLMNPQRSTUVWXYZ"
        band = "N" if self.north else "M"
        return f"{self.zone:02d}{band}{letters[self.gx % 24]}{letters[self.gy % 24]}"

    def bounds(self) -> tuple[float, float, float, float]:
        t = self.transform
        return t.c, t.f - SIDE_M, t.c + SIDE_M, t.f

    def footprint_lonlat(self) -> list[list[float]]:
        left, bottom, right, top = self.bounds()
        xs, ys = warp_transform(f"EPSG:{self.epsg}", "EPSG:4326", [left, right, right, left, left],
                                [bottom, bottom, top, top, bottom])
        return [[round(x, 6), round(y, 6)] for x, y in zip(xs, ys, strict=True)]

    def centre_lon(self) -> float:
        return (self.zone - 1) * 6 - 180 + 3


def utm(lon: float, lat: float) -> tuple[int, bool, float, float]:
    zone = min(int((lon + 180) // 6) + 1, 60)
    north = lat >= 0
    xs, ys = warp_transform("EPSG:4326", f"EPSG:{(32600 if north else 32700) + zone}", [lon], [lat])
    return zone, north, xs[0], ys[0]


def granules_at(lon: float, lat: float) -> list[Granule]:
    """Every granule whose (overlapping) extent holds the point."""
    zone, north, x, y = utm(lon, lat)
    found = []
    for gx in range(int(x // GRID_M) - 1, int(x // GRID_M) + 2):
        for gy in range(int(y // GRID_M) - 1, int(y // GRID_M) + 2):
            granule = Granule(zone, north, gx, gy)
            left, bottom, right, top = granule.bounds()
            if left <= x < right and bottom <= y < top:
                found.append(granule)
    return found


def stable_seed(*parts: object) -> int:
    """A seed that is the same in every process (unlike hash())."""
    return _seed(*parts)


def _seed(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "big")


def acquisitions(granule: Granule, first: datetime, last: datetime) -> list[tuple[datetime, datetime]]:
    """(sensed, catalogued) times of the granule's acquisitions sensed in [first, last]."""
    phase = _seed("orbit", granule.zone, granule.gx) % REVISIT_DAYS
    solar = timedelta(hours=10.5 - granule.centre_lon() / 15)
    out = []
    day = (first - EPOCH).days - 1
    while True:
        if (day - phase) % REVISIT_DAYS == 0:
            sensed = EPOCH + timedelta(days=day) + solar
            if sensed > last:
                break
            if sensed >= first:
                delay_h = 3 + (_seed("delay", granule, day) % 700) / 100
                out.append((sensed, sensed + timedelta(hours=delay_h)))
        elif EPOCH + timedelta(days=day) > last + timedelta(days=1):
            break
        day += 1
    return out


def _smooth_noise(seed: int, size: int, cells: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = rng.random((cells + 1, cells + 1))
    idx = np.linspace(0, cells, size)
    i0 = np.floor(idx).astype(int).clip(0, cells - 1)
    f = idx - i0
    rows = coarse[i0] * (1 - f)[:, None] + coarse[i0 + 1] * f[:, None]
    return rows[:, i0] * (1 - f)[None, :] + rows[:, i0 + 1] * f[None, :]


def land_cover(granule: Granule) -> np.ndarray:
    noise = _smooth_noise(_seed("land", granule), SIZE_PX, 12)
    cover = np.full(noise.shape, FOREST, np.uint8)
    cover[noise > 0.72] = SOIL
    cover[noise < 0.12] = WATER
    return cover


def clouds(granule: Granule, sensed: datetime) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Masks of cloud (SCL 8/9 by density), thin cirrus and cloud shadow for one acquisition."""
    rng = np.random.default_rng(_seed("sky", granule, sensed.isoformat()))
    state = rng.random()
    target = 0.0 if state < 0.45 else (0.3 if state < 0.75 else 0.92)
    density = _smooth_noise(_seed("cloud", granule, sensed.isoformat()), SIZE_PX, 8)
    if target == 0.0:
        cloud = np.zeros(density.shape, bool)
    else:
        cloud = density >= np.quantile(density, 1 - target)
    cirrus = (_smooth_noise(_seed("cirrus", granule, sensed.isoformat()), SIZE_PX, 5) > 0.85) & ~cloud
    shift = 40  # shadows fall 400 m from their clouds
    shadow = np.zeros_like(cloud)
    shadow[shift:, shift:] = cloud[:-shift, :-shift]
    return cloud, cirrus, shadow & ~cloud


def fire_masks(granule: Granule, fires: list[Fire], sensed: datetime) -> tuple[np.ndarray, np.ndarray]:
    """Burn scar and active front at ``sensed``."""
    scar = np.zeros((SIZE_PX, SIZE_PX), bool)
    front = np.zeros_like(scar)
    t = granule.transform
    cols = t.c + (np.arange(SIZE_PX) + 0.5) * PIXEL_M
    rows = t.f - (np.arange(SIZE_PX) + 0.5) * PIXEL_M
    for fire in fires:
        if sensed < fire.start:
            continue
        zone, north, x, y = utm(fire.lon, fire.lat)
        if (zone, north) != (granule.zone, granule.north):
            continue
        grown = min(1.0, (sensed - fire.start).total_seconds() / 3600 / max(fire.growth_h, 1e-6))
        radius = math.sqrt(max(grown, 0.02) * fire.hectares * 10_000 / math.pi)
        left, bottom, right, top = granule.bounds()
        if x + radius < left or x - radius > right or y + radius < bottom or y - radius > top:
            continue
        dist = np.hypot(cols[None, :] - x, rows[:, None] - y)
        scar |= dist <= radius
        if fire.end is None or sensed < fire.end:
            front |= (dist <= radius) & (dist > radius - 40)
    return scar, front


@dataclass
class SceneLayers:
    cover: np.ndarray
    cloud: np.ndarray
    cirrus: np.ndarray
    shadow: np.ndarray
    scar: np.ndarray
    front: np.ndarray
    dense: np.ndarray


def scene_layers(granule: Granule, sensed: datetime, fires: list[Fire]) -> SceneLayers:
    cloud, cirrus, shadow = clouds(granule, sensed)
    scar, front = fire_masks(granule, fires, sensed)
    dense = _smooth_noise(_seed("dense", granule, sensed.isoformat()), SIZE_PX, 16) > 0.5
    return SceneLayers(land_cover(granule), cloud, cirrus, shadow, scar, front, dense)


def band_dn(layers: SceneLayers, band: str, seed: int) -> np.ndarray:
    """The band's digital numbers (uint16, Earth Search's scale and offset) at its own resolution."""
    resolution, (forest, soil, water, burn, cloud, flame) = BANDS[band]
    refl = np.choose(layers.cover, (forest, soil, water)).astype(np.float32)
    refl = np.where(layers.scar & (layers.cover != WATER), burn, refl)
    refl = np.where(layers.front, flame, refl)
    refl = np.where(layers.shadow, refl * 0.35, refl)
    refl = np.where(layers.cirrus, refl * 0.7 + cloud * 0.3, refl)
    refl = np.where(layers.cloud, cloud, refl)
    rng = np.random.default_rng(seed)
    refl = refl * (1 + rng.normal(0, 0.03, refl.shape).astype(np.float32))
    dn = np.clip(np.round((refl - DN_OFFSET) / DN_SCALE), 1, DN_MAX).astype(np.uint16)
    step = resolution // PIXEL_M
    return dn[::step, ::step] if step > 1 else dn


def scl(layers: SceneLayers) -> np.ndarray:
    """The scene classification layer at 20 m."""
    classes = np.choose(layers.cover, (SCL_OF_COVER[FOREST], SCL_OF_COVER[SOIL], SCL_OF_COVER[WATER]))
    classes = np.where(layers.shadow, 3, classes)
    classes = np.where(layers.cirrus, 10, classes)
    classes = np.where(layers.cloud, np.where(layers.dense, 9, 8), classes)
    return classes.astype(np.uint8)[::2, ::2]
