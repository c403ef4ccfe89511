"""Procedural, deterministic satellite-like imagery anchored to the world and to the clock.

Every pixel is a function of its Web Mercator position and of the simulator's clock only, so the
Static Images API and the Raster Tiles API agree: a mosaic of raster tiles, cropped, shows the same
ground as a static image of the same footprint, and a request is deterministic by (lat, lon, zoom,
size, clock).

The scene is boreal Canada with the confounders real imagery has: conifer/deciduous forest with
canopy texture and dark conifer stands, muskeg and wet soil, lakes (clear, dark, murky), farmland
parcels (green, yellow, ploughed, wet, orange soils with rows of trees like an olive grove),
clear-cuts, bare ground, asphalt (highways, gravel roads, towns with streets, parking lots, shadowed
buildings and terracotta roofs), OLD burn scars (regrown: soft edges, green regrowth and snags, no rim,
front or smoke; they are a property of the ground, so they lie in fire and fire-free places alike),
terrain shadows in hilly regions, clouds with their shadows, and haze. Foliage follows the day of the
year (light spring green, summer green, yellow/orange/red autumn deciduous stands).

Fires (``FireField``) add fresh burn scars: char with ash, unburned islands, a scorched rim, an active
front line on the char's downwind edge and a smoke plume drawn from the front along the wind. Each
fire is drawn at its area at the clock: nothing before its start, growing with its reported
hectares; once under control the front and then the plume fade, and after it is out the scar stays.
The colours, brightness and textures of these signs all occur elsewhere (char ≈ asphalt, wet soil,
dark conifer, old scars; the rim ≈ ploughed soil; the front ≈ orange soil, roofs, autumn leaves; smoke
≈ haze and cloud), so what tells a fire apart is its spatial structure: char ringed by a scorched rim
with a bright line along its edge and a plume growing from one point. ``benchmarks/imagery.md``
measures how much a classifier on global image statistics gets from these scenes, against the CNN.

Noise is value noise evaluated separably on the pixel grid (lattice hashes on a small grid, linear
interpolation along x then y); layers are evaluated at full resolution only where a coarse bound
says they can appear, so a 350×350 image takes a few tens of milliseconds with numpy.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from emberwatch.common.geo import lonlat_to_mercator_m

GRAIN = 10.0  # peak-to-peak sensor grain in grey levels

# Mercator metres per ground metre around 55°N, so features have plausible ground sizes in Canada.
K = 1.75

_M1 = np.uint32(0x27D4EB2D)
_M2 = np.uint32(0x165667B1)
_M3 = np.uint32(0x85EBCA6B)
_M4 = np.uint32(0xC2B2AE35)


def _mix(h: np.ndarray) -> np.ndarray:
    h ^= h >> np.uint32(15)
    h *= _M3
    h ^= h >> np.uint32(13)
    h *= _M4
    h ^= h >> np.uint32(16)
    return h


def hash2(ix: np.ndarray, iy: np.ndarray, seed: int) -> np.ndarray:
    """Uniform [0, 1) float32 for integer lattice points (broadcasting), stable across platforms."""
    with np.errstate(over="ignore"):
        hx = ix.astype(np.int64).astype(np.uint32) * _M1
        hy = iy.astype(np.int64).astype(np.uint32) * _M2
        h = hx ^ hy ^ np.uint32((seed * 0x9E3779B1) & 0xFFFFFFFF)
        h = _mix(h)
    return (h >> np.uint32(8)).astype(np.float32) * np.float32(1.0 / (1 << 24))


def _axis(coords: np.ndarray, cell: float) -> tuple[np.ndarray, np.ndarray, int]:
    g = coords / cell
    i = np.floor(g)
    f = (g - i).astype(np.float32)
    f = f * f * (3 - 2 * f)  # smoothstep
    i = i.astype(np.int64)
    return i, f, int(i.min())


def value_noise(xs: np.ndarray, ys: np.ndarray, cell: float, seed: int) -> np.ndarray:
    """Smooth noise in [0, 1) at pixel centres ``xs`` (columns) × ``ys`` (rows), lattice ``cell`` metres."""
    ix, fx, x0 = _axis(xs, cell)
    iy, fy, y0 = _axis(ys, cell)
    nx, ny = int(ix.max()) - x0 + 2, int(iy.max()) - y0 + 2
    lat = hash2(np.arange(x0, x0 + nx)[None, :], np.arange(y0, y0 + ny)[:, None], seed)
    jx, jy = ix - x0, iy - y0
    along_x = lat[:, jx] * (1 - fx) + lat[:, jx + 1] * fx  # (ny, w)
    return along_x[jy, :] * (1 - fy)[:, None] + along_x[jy + 1, :] * fy[:, None]


def cell_hash(xs: np.ndarray, ys: np.ndarray, cw: float, ch: float, seed: int) -> np.ndarray:
    """Per-pixel hash of the (cw × ch metre) cell each pixel falls in."""
    ix = np.floor(xs / cw).astype(np.int64)
    iy = np.floor(ys / ch).astype(np.int64)
    x0, y0 = int(ix.min()), int(iy.min())
    lat = hash2(np.arange(x0, int(ix.max()) + 1)[None, :], np.arange(y0, int(iy.max()) + 1)[:, None], seed)
    return lat[(iy - y0)[:, None], (ix - x0)[None, :]]


def _c(colour) -> np.ndarray:
    return np.asarray(colour, dtype=np.float32).reshape(3, 1, 1)


def _lerp(img: np.ndarray, colour, alpha: np.ndarray) -> np.ndarray:
    """In place: img*(1-alpha) + colour*alpha on a planar (3, h, w) image; colour RGB or (3, h, w).

    Channel by channel, so the temporaries are one plane (cache-sized), not three."""
    planar = not (np.ndim(colour) == 1 or isinstance(colour, tuple))
    tmp = np.empty_like(alpha, dtype=np.float32)
    for ch in range(3):
        plane = img[ch]
        col = colour[ch] if planar else np.float32(colour[ch])
        np.subtract(col, plane, out=tmp)
        tmp *= alpha
        plane += tmp
    return img


def _put(img: np.ndarray, mask: np.ndarray, colour) -> None:
    for ch in range(3):
        img[ch][mask] = colour[ch]


DEFAULT_DAY_OF_YEAR = 196  # mid-July: the look of an image rendered without a clock
FRONT_M = 10.0  # half-width of the flame line, ground metres
MIN_RADIUS_M = 70.0  # a fire is drawn at least this big (ground metres of radius; ~1.5 ha): its first signs


@dataclass(frozen=True)
class Fire:
    """A fire the imagery shows. Without ``start`` it is always drawn at ``hectares`` (active);
    with ``start`` nothing is drawn before it, then it grows to ``hectares`` over ``growth_h``
    hours (0: at once). ``season`` (a ``simulators.cwfis.season.SeasonFire``) overrides both: the
    fire is drawn at the area and stage CWFIS reports at the clock, and its scar stays once out."""

    lat: float
    lon: float
    hectares: float | None = None
    start: datetime | None = None
    growth_h: float = 0.0
    season: Any = field(default=None, compare=False, repr=False)

    @property
    def max_hectares(self) -> float:
        if self.season is not None:
            return float(self.season.final_hectares)
        return self.hectares if self.hectares and self.hectares > 0 else 5.0


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def fire_at(fire: Fire, at: datetime | None) -> tuple[float, str] | None:
    """(hectares, stage) of ``fire`` as drawn at ``at``; None when nothing is drawn yet.

    Stages: OC/BH (active: front and plume), UC (smouldering: a thin plume), EX and OUT (the scar)."""
    if fire.season is not None:
        f = fire.season
        if at is None:
            return float(f.final_hectares), "OC"
        from simulators.cwfis.season import fire_state

        at = _utc(at)
        if at < f.start:
            return None
        state = fire_state(f, at)
        if state is None:  # out and no longer reported: the scar stays at its last reported size
            last = fire_state(f, f.out)
            return (last.hectares if last else float(f.final_hectares)), "OUT"
        return float(state.hectares), state.stage
    ha = fire.hectares if fire.hectares and fire.hectares > 0 else 5.0
    if fire.start is None or at is None:
        return ha, "OC"
    age_h = (_utc(at) - _utc(fire.start)).total_seconds() / 3600.0
    if age_h < 0:
        return None
    if fire.growth_h > 0:
        ha = max(0.01, ha * min(1.0, age_h / fire.growth_h))
    return ha, "OC"


_STAGE_FRONT = {"OC": 1.0, "BH": 0.6, "UC": 0.0, "EX": 0.0, "OUT": 0.0}
_STAGE_SMOKE = {"OC": 1.0, "BH": 0.7, "UC": 0.3, "EX": 0.0, "OUT": 0.0}


def _radius(hectares: float) -> float:
    r = math.sqrt(max(hectares, 0.01) * 10_000 / math.pi) * K
    return min(max(r, MIN_RADIUS_M * K), 6000.0 * K)


def _fire_look(fire: Fire) -> dict:
    """The size-independent part of a fire's appearance, from a hash of its location."""
    digest = hashlib.sha256(f"{fire.lat:.5f},{fire.lon:.5f}".encode()).digest()
    u = [b / 255.0 for b in digest[:12]]
    return {
        "off": 0.45 * u[2], "off_a": 2 * math.pi * u[3], "wind": 2 * math.pi * u[4],
        "front": u[5] < 0.85 or u[0] >= 0.85,  # a few fires show no flame line (under the smoke)
        "smoke": (0.0 if 0.85 <= u[0] < 0.97 else 0.35 + 0.5 * u[1]),  # some show no plume
        "arc": 0.45 + 0.45 * u[7], "plume": 2.5 + 2 * u[6],
        "seed": int.from_bytes(digest[12:16], "big"),
    }


def _fire_params(look: dict, hectares: float, stage: str) -> dict:
    radius = _radius(hectares)
    off_r = radius * look["off"]
    front = _STAGE_FRONT.get(stage, 0.0) if look["front"] else 0.0
    return {
        "radius": radius, "stage": stage, "seed": look["seed"], "wind": look["wind"],
        "dx": off_r * math.cos(look["off_a"]), "dy": off_r * math.sin(look["off_a"]),
        "front": front * look["arc"], "smoke": look["smoke"] * _STAGE_SMOKE.get(stage, 0.0),
        "plume_len": max(radius * look["plume"], 700.0 * K),
    }


@dataclass
class FireField:
    """The fires the imagery shows, with fast spatial selection."""

    fires: list[Fire] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.set(self.fires)

    def set(self, fires: list[Fire]) -> None:
        self.fires = list(fires)
        self._looks = [_fire_look(f) for f in self.fires]
        xy = [lonlat_to_mercator_m(f.lat, f.lon) for f in self.fires]
        self._x = np.array([p[0] for p in xy], dtype=np.float64)
        self._y = np.array([p[1] for p in xy], dtype=np.float64)
        big = [_fire_params(look, f.max_hectares, "OC") for f, look in zip(self.fires, self._looks, strict=True)]
        self._reach = np.array([p["radius"] * 1.6 + p["plume_len"] for p in big])

    def near(self, cx: float, cy: float, half: float,
             at: datetime | None = None) -> list[tuple[float, float, dict]]:
        """The fires that can show within ``half`` of (cx, cy) at ``at``, with their look then."""
        if not self.fires:
            return []
        close = (np.abs(self._x - cx) < half + self._reach) & (np.abs(self._y - cy) < half + self._reach)
        out = []
        for i in np.nonzero(close)[0]:
            view = fire_at(self.fires[i], at)
            if view is not None:
                out.append((self._x[i], self._y[i], _fire_params(self._looks[i], *view)))
        return out


def day_of_year(at: datetime | None) -> int:
    return DEFAULT_DAY_OF_YEAR if at is None else _utc(at).timetuple().tm_yday


def _season_palette(doy: int) -> tuple[list, float]:
    """Forest colours (dark, mid, light stands) for the day of the year, and the autumn share."""
    spring = float(np.clip((165 - doy) / 45, 0, 1))
    autumn = float(np.clip((doy - 232) / 30, 0, 1))
    summer = ((26, 44, 28), (60, 80, 42), (90, 92, 62))
    early = ((34, 50, 30), (84, 100, 50), (128, 136, 70))
    pal = [tuple(s * (1 - spring) + e * spring for s, e in zip(sc, ec, strict=True))
           for sc, ec in zip(summer, early, strict=True)]
    return pal, autumn


def render(mx0: float, my0: float, step: float, width: int, height: int,
           fires: FireField | None = None, at: datetime | None = None) -> np.ndarray:
    """RGB uint8 (height, width, 3) image whose top-left corner is at Mercator metres (mx0, my0),
    as the ground looks at ``at`` (None: a mid-July day, every fire at its given size)."""
    xs = mx0 + (np.arange(width) + 0.5) * step
    ys = my0 - (np.arange(height) + 0.5) * step
    n = lambda cell, seed: value_noise(xs, ys, cell * K, seed)  # noqa: E731
    stride = 4
    xc, yc = np.append(xs[::stride], xs[-1]), np.append(ys[::stride], ys[-1])

    def bounds(*octaves: tuple[float, float, int]) -> tuple[float, float]:
        """Exact-enough range of a noise sum over the image from a coarse grid: value noise changes
        by at most 1.5/cell per metre, so the margin bounds what lies between the samples."""
        v = sum(w * value_noise(xc, yc, c * K, sd) for w, c, sd in octaves)
        margin = sum(1.5 * w * stride * step / (c * K) for w, c, _ in octaves)
        return float(v.min()) - margin, float(v.max()) + margin

    doy = day_of_year(at)
    palette, autumn = _season_palette(doy)
    veg = 0.75 * n(260, 4) + 0.25 * n(45, 14)
    tex = 0.6 * n(5, 5) + 0.4 * n(1.8, 7)
    bright = 0.55 + 0.9 * tex

    w1 = np.clip((veg - 0.40) / 0.12, 0, 1)
    w2 = np.clip((veg - 0.68) / 0.10, 0, 1)
    img = np.empty((3, height, width), np.float32)
    for ch, (c0, c1, c2) in enumerate(zip(*palette, strict=True)):
        plane = img[ch]
        np.multiply(w1, np.float32(c1 - c0), out=plane)
        plane += np.float32(c0)
        plane += (np.float32(c2) - plane) * w2
        plane *= bright
    if autumn > 0:  # deciduous stands turn yellow, orange and red, stand by stand
        stand = cell_hash(xs, ys, 30 * K, 26 * K, 30)
        leaf = np.array([[196, 150, 48], [208, 118, 40], [170, 70, 42], [150, 140, 60]], np.float32)
        lc = np.moveaxis(leaf[np.minimum((stand * 4).astype(np.int64), 3)], -1, 0) * bright[None]
        _lerp(img, lc, (w2 * autumn * np.clip(n(90, 31) * 1.6 - 0.2, 0, 1)).astype(np.float32))

    # Dark conifer stands: near-black crowns with deep shadows between them, some almost grey.
    if bounds((1.0, 380, 32))[1] > 0.60:
        con = np.clip((n(380, 32) - 0.60) / 0.06, 0, 1)
        if con.any():
            grey = np.clip(n(1200, 33) * 1.4 - 0.3, 0, 1)[None]
            crown = (0.25 + 1.5 * tex * tex)[None]
            dark = (_c((16, 26, 18)) * (1 - grey) + _c((30, 31, 29)) * grey) * crown
            _lerp(img, dark, con)

    # Each layer is computed at full resolution only where the coarse bounds say it can appear.
    elev = None
    if bounds((0.7, 1400, 1), (0.3, 260, 3))[0] < 0.28:
        elev = 0.7 * n(1400, 1) + 0.3 * n(260, 3)
        land = elev >= 0.28
    else:
        land = np.ones((height, width), bool)
    farm = None
    if bounds((1.0, 2400, 8))[1] > 0.62:
        farm = (n(2400, 8) > 0.62) & land
    if farm is not None and farm.any():
        parcel = cell_hash(xs, ys, 240 * K, 150 * K, 20)
        palette_f = np.array([[86, 118, 50], [112, 140, 60], [168, 158, 92], [122, 96, 70], [150, 132, 102],
                              [96, 110, 58], [196, 120, 70], [62, 54, 46], [176, 104, 62], [74, 66, 56]],
                             np.float32)
        pc = palette_f[np.minimum((parcel * len(palette_f)).astype(np.int64), len(palette_f) - 1)]
        rows = 0.9 + 0.2 * n(4, 21)
        pcp = np.moveaxis(pc, -1, 0) * rows[None]
        img = np.where(farm[None], pcp, img)
        roads = ((np.mod(xs, 960 * K) < 8 * K)[None, :] | (np.mod(ys, 960 * K) < 8 * K)[:, None]) & farm
        _put(img, roads, (158, 152, 142))
        forest = land & ~farm
    else:
        forest = land
    # Orange soils with rows of dark trees (an olive grove, an orchard on red earth).
    if bounds((1.0, 700, 35))[1] > 0.78:
        grove = np.clip((n(700, 35) - 0.78) / 0.02, 0, 1) * land
        if grove.any():
            soil = _c((198, 122, 72)) * (0.85 + 0.3 * n(30, 36))[None]
            gx = np.mod(xs, 7 * K) < 3 * K
            gy = np.mod(ys, 7 * K) < 3 * K
            trees = (gx[None, :] & gy[:, None]).astype(np.float32) * 0.85
            _lerp(soil, (40, 48, 28), trees)
            _lerp(img, soil, grove.astype(np.float32))
    cut = cell_hash(xs, ys, 180 * K, 120 * K, 22)
    clearcut = forest & (cut > 0.93) & (veg < 0.68)
    if clearcut.any():
        shade = (0.75 + 0.5 * tex)[clearcut]
        for ch, c in enumerate((104, 98, 66)):
            img[ch][clearcut] = c * shade
    if bounds((1.0, 110, 9))[1] > 0.80:
        bare_m = np.clip((n(110, 9) - 0.80) / 0.04, 0, 1) * land
        if bare_m.any():
            _lerp(img, _c((142, 124, 98)) * (0.85 + 0.3 * tex)[None], bare_m)
    # Muskeg and wet soil: dark, nearly grey, with pale specks of dead grass.
    if bounds((1.0, 160, 37))[1] > 0.78:
        wet = np.clip((n(160, 37) - 0.78) / 0.05, 0, 1) * land
        if wet.any():
            mud = np.empty_like(img)
            mud[:] = _c((40, 37, 33))
            _lerp(mud, (104, 100, 92), np.clip(n(3, 38) * 2.2 - 1.3, 0, 1))
            mud *= (0.8 + 0.4 * tex)[None]
            _lerp(img, mud, wet)
    lo, hi = bounds((1.0, 900, 10))
    if lo < 0.505 and hi > 0.495:
        gravel = (np.abs(n(900, 10) - 0.5) < 0.005) & forest
        _put(img, gravel, (150, 141, 118))
    lo, hi = bounds((1.0, 3000, 39))
    if lo < 0.503 and hi > 0.497:  # paved highways: asphalt with a pale centre line
        hw = np.abs(n(3000, 39) - 0.5)
        _put(img, (hw < 0.003) & land, (58, 58, 61))
        _put(img, (hw < 0.0003) & land, (190, 186, 160))

    if bounds((1.0, 2200, 11))[1] > 0.74:
        town = (n(2200, 11) > 0.74) & land
        if town.any():
            img = _town(img, xs, ys, town, n(2200, 11), tex)

    # Old burn scars, regrown: a property of the ground, in fire and fire-free places alike.
    img = _old_scars(img, xs, ys, step, land, tex)

    if elev is not None:
        water = ~land
        depth = np.clip((0.28 - elev) / 0.06, 0, 1)
        murk = np.clip(n(3000, 40) * 2 - 0.6, 0, 1)[None]
        wc = np.empty_like(img)
        wc[:] = _c((44, 62, 58)) * (1 - murk) + _c((52, 54, 50)) * murk
        _lerp(wc, (16, 24, 30), depth)
        wc *= (0.95 + 0.1 * tex)[None]
        img = np.where(water[None], wc, img)

    # Terrain shadows in hilly regions: slopes facing away from the sun are darker.
    if bounds((1.0, 9000, 41))[1] > 0.45:
        relief = np.clip((n(9000, 41) - 0.45) / 0.25, 0, 1)
        if relief.any():
            h = 60.0 * K
            e0 = 0.7 * n(600, 42) + 0.3 * n(140, 43)
            e1 = 0.7 * value_noise(xs + h, ys + h, 600 * K, 42) + 0.3 * value_noise(xs + h, ys + h, 140 * K, 43)
            shade = np.clip(1.0 - relief * 6.0 * (e0 - e1), 0.35, 1.25)
            img *= shade[None]

    if fires is not None:
        cx, cy = mx0 + width * step / 2, my0 - height * step / 2
        for fx, fy, p in fires.near(cx, cy, max(width, height) * step / 2, at):
            img = _burn(img, xs, ys, fx, fy, p, tex)

    if bounds((1.0, 1500, 12))[1] > 0.74:
        shadow = np.clip((value_noise(xs + 220 * K, ys + 160 * K, 1500 * K, 12) - 0.74) / 0.12, 0, 1)
        if shadow.any():  # the clouds' shadows, offset from them by the sun's angle
            img *= (1.0 - 0.5 * shadow)[None]
        ca = np.clip((n(1500, 12) - 0.74) / 0.12, 0, 0.9)
        if ca.any():
            ca = ca * (0.6 + 0.4 * n(150, 13))
            _lerp(img, (232, 232, 236), ca)
    if bounds((1.0, 20000, 44))[1] > 0.5:
        haze = np.clip((n(20000, 44) - 0.5) / 0.3, 0, 1) * 0.5
        if haze.any():
            _lerp(img, (196, 200, 206), (haze * (0.8 + 0.4 * n(400, 45))).astype(np.float32))
    # Sensor grain, anchored to the world pixel grid of this scale (same in tiles and static images).
    gx = np.floor(xs / step).astype(np.int64)
    gy = np.floor(ys / step).astype(np.int64)
    grain = (hash2(gx[None, :], gy[:, None], 97) - np.float32(0.5)) * np.float32(GRAIN)
    out = np.empty((height, width, 3), np.uint8)
    for ch in range(3):
        plane = img[ch]
        plane += grain
        np.clip(plane, 0, 255, out=plane)
        out[..., ch] = plane
    return out


def _buildings(xs, ys, bx, by, empty, ground, seed):
    """Buildings on a (bx × by) lot grid: roofs from a palette, each casting a shadow to one side."""
    roof = cell_hash(xs, ys, bx, by, seed)
    fx = (np.mod(xs, bx) / bx)[None, :]
    fy = (np.mod(ys, by) / by)[:, None]
    roofs = np.array([[170, 160, 150], [178, 94, 58], [90, 92, 98], [200, 198, 190], [190, 110, 64],
                      [64, 64, 68], [226, 222, 212]], np.float32)
    rc = np.moveaxis(roofs[np.minimum((roof * 7).astype(np.int64), 6)], -1, 0)
    built = roof > empty
    inside = (fx > 0.12) & (fx < 0.78) & (fy > 0.25) & (fy < 0.9)
    shadow = (fx >= 0.78) & (fx < 0.98) & (fy > 0.1) & (fy < 0.9)
    t = np.where((built & inside)[None], rc, ground)
    return np.where((built & shadow)[None], _c((34, 36, 40)), t)


def _town(img, xs, ys, town, core_noise, tex):
    """Streets, parking lots with cars, buildings with shadows (grey, white, dark, terracotta roofs)."""
    t = _buildings(xs, ys, 16 * K, 14 * K, 0.3, _c((84, 110, 62)), 23)
    core = (core_noise > 0.82)[None]  # a dense centre: concrete, small blocks, deep shadows
    if core.any():
        t = np.where(core, _buildings(xs, ys, 12 * K, 10 * K, 0.05, _c((150, 146, 138)), 26), t)
    block = cell_hash(xs, ys, 110 * K, 90 * K, 24)
    lot = (block < 0.22)[None]
    if lot.any():  # parking: asphalt with rows of cars
        cars = cell_hash(xs, ys, 2.8 * K, 5.5 * K, 25)
        car_c = np.array([[210, 210, 214], [30, 30, 34], [150, 30, 30], [120, 124, 130], [200, 200, 196]],
                         np.float32)
        cc = np.moveaxis(car_c[np.minimum((cars * 5).astype(np.int64), 4)], -1, 0)
        parked = ((cars > 0.45) & (np.mod(ys, 5.5 * K) > 0.8 * K)[:, None]
                  & (np.mod(xs, 2.8 * K) > 0.5 * K)[None, :])[None]
        lot_c = np.where(parked, cc, _c((66, 66, 68)) * (0.9 + 0.2 * tex)[None])
        t = np.where(lot, lot_c, t)
    street = (np.mod(xs, 110 * K) < 11 * K)[None, :] | (np.mod(ys, 90 * K) < 10 * K)[:, None]
    t = np.where(street[None], _c((78, 78, 80)), t)
    return np.where(town[None], t, img)


SCAR_CELL = 2600.0 * K  # one old scar at most per cell (ground metres × K)
SCAR_SHARE = 0.35  # share of cells with an old scar


def _old_scars(img, xs, ys, step, land, tex):
    reach = 1000.0 * K * 1.5
    i0, i1 = int(math.floor((xs[0] - reach) / SCAR_CELL)), int(math.floor((xs[-1] + reach) / SCAR_CELL))
    j0, j1 = int(math.floor((ys[-1] - reach) / SCAR_CELL)), int(math.floor((ys[0] + reach) / SCAR_CELL))
    for i in range(i0, i1 + 1):
        for j in range(j0, j1 + 1):
            u = [float(hash2(np.array(i), np.array(j), 60 + k)) for k in range(6)]
            if u[0] >= SCAR_SHARE:
                continue
            cx, cy = (i + u[1]) * SCAR_CELL, (j + u[2]) * SCAR_CELL
            r = (80 + 900 * u[3] ** 2) * K
            cols = np.nonzero(np.abs(xs - cx) < 1.6 * r)[0]
            rows = np.nonzero(np.abs(ys - cy) < 1.6 * r)[0]
            if not cols.size or not rows.size:
                continue
            c0, c1, r0, r1 = cols[0], cols[-1] + 1, rows[0], rows[-1] + 1
            sx, sy = xs[c0:c1], ys[r0:r1]
            seed = 1000 + (i * 7919 + j * 104729) % 100000
            d = np.sqrt(((sx - cx) ** 2)[None, :] + ((sy - cy) ** 2)[:, None]).astype(np.float32) / np.float32(r)
            rag = d + 0.5 * (value_noise(sx, sy, r * 0.55, seed) - 0.5) \
                + 0.15 * (value_noise(sx, sy, max(r * 0.12, 8 * K), seed + 1) - 0.5)
            m = np.clip((1.0 - rag) / 0.35, 0, 1) * land[r0:r1, c0:c1]
            if not m.any():
                continue
            green = 0.15 + 0.5 * u[4]  # years of regrowth
            sub = img[:, r0:r1, c0:c1]
            stex = tex[r0:r1, c0:c1]
            col = np.empty_like(sub)
            col[:] = _c((44, 41, 37))
            _lerp(col, (108, 104, 96), np.clip(value_noise(sx, sy, 3 * K, seed + 2) * 2.2 - 1.25, 0, 1))
            regrow = np.clip((value_noise(sx, sy, 6 * K, seed + 3) - (1 - green)) / 0.12, 0, 1)
            _lerp(col, (70, 98, 50), regrow)
            col *= (0.75 + 0.5 * stex)[None]
            _lerp(sub, col, m * (0.75 + 0.25 * u[5]))
    return img


def _burn(img, xs, ys, fx, fy, p, tex):
    r = p["radius"]
    seed = p["seed"]
    dx = (xs - (fx + p["dx"])).astype(np.float32)
    dy = (ys - (fy + p["dy"])).astype(np.float32)
    ux, uy = math.cos(p["wind"]), math.sin(p["wind"])
    # The scar (ragged distance < 1.2 for the rim) lies within 1.5 radii of its centre.
    cols = np.nonzero(np.abs(dx) < 1.5 * r)[0]
    rows = np.nonzero(np.abs(dy) < 1.5 * r)[0]
    if cols.size and rows.size:
        c0, c1, r0, r1 = cols[0], cols[-1] + 1, rows[0], rows[-1] + 1
        sx, sy, sdx, sdy = xs[c0:c1], ys[r0:r1], dx[c0:c1], dy[r0:r1]
        sub = img[:, r0:r1, c0:c1]
        stex = tex[r0:r1, c0:c1]
        dist = np.sqrt(sdx[None, :] ** 2 + sdy[:, None] ** 2)
        d = dist / np.float32(r)
        rag = d + 0.5 * (value_noise(sx, sy, r * 0.55, seed) - 0.5) \
            + 0.15 * (value_noise(sx, sy, max(r * 0.12, 8 * K), seed + 1) - 0.5)
        burn = np.clip((1.0 - rag) / 0.06, 0, 1)
        islands = value_noise(sx, sy, max(r * 0.08, 12 * K), seed + 2) > 0.80
        burn *= np.where(islands, np.float32(0.2), np.float32(1.0))
        ash = np.clip(value_noise(sx, sy, 3 * K, seed + 3) * 2.2 - 1.25, 0, 1)
        char = np.empty_like(sub)
        char[:] = _c((30, 27, 25))
        _lerp(char, (112, 108, 100), ash)
        char *= (0.8 + 0.4 * stex)[None]
        rim = np.clip(1 - np.abs(rag - 1.06) / 0.08, 0, 1) * 0.85
        _lerp(sub, (126, 84, 50), rim)
        _lerp(sub, char, burn)
        if p["front"] > 0:  # the flame line: the downwind part of the char's edge
            cosang = (sdx[None, :] * ux + sdy[:, None] * uy) / np.maximum(dist, 1e-3)
            arc = cosang > 1 - 2 * p["front"]
            band = np.abs(rag - 1.0) * np.float32(r / K)  # ground metres from the edge
            glow = np.clip(1 - band / FRONT_M, 0, 1) * arc
            _lerp(sub, (236, 126, 40), glow.astype(np.float32))
            core = (band < FRONT_M * 0.35) & arc
            _put(sub, core, (255, 204, 92))
    if p["smoke"] > 0:  # the plume grows from the front's downwind point along the wind
        L = p["plume_len"]
        ox = (dx - ux * 0.9 * r) / L
        oy = (dy - uy * 0.9 * r) / L
        along = ox[None, :] * ux + oy[:, None] * uy
        perp = -ox[None, :] * uy + oy[:, None] * ux
        a = np.clip(along, 0, None)
        dens = p["smoke"] * np.exp(-(perp / (0.04 + 0.3 * a)) ** 2 - a / 1.2)
        dens *= np.clip((along + 0.03) / 0.03, 0, 1)
        if float(dens.max()) > 0.004:
            dens *= 0.6 + 0.8 * value_noise(xs, ys, 60 * K, seed + 4)
            _lerp(img, (206, 204, 200), np.clip(dens, 0, 0.95).astype(np.float32))
    return img


def blank(width: int, height: int, colour: tuple[int, int, int] = (238, 238, 238)) -> np.ndarray:
    """A "no coverage" tile: one flat colour."""
    out = np.empty((height, width, 3), np.uint8)
    out[:] = colour
    return out


WORLD_M = 2 * math.pi * 6_378_137.0


def render_static(lat: float, lon: float, zoom: float, width: int, height: int, *, retina: bool = False,
                  fires: FireField | None = None, at: datetime | None = None) -> np.ndarray:
    """The Static Images API's picture: (lon, lat) at the centre, 512-px tile scale at ``zoom``."""
    scale = 2 if retina else 1
    step = WORLD_M / (512 * 2.0 ** zoom) / scale
    cx, cy = lonlat_to_mercator_m(lat, lon)
    w, h = width * scale, height * scale
    return render(cx - w * step / 2, cy + h * step / 2, step, w, h, fires, at)


def render_tile(z: int, x: int, y: int, tile_px: int, fires: FireField | None = None,
                at: datetime | None = None) -> np.ndarray:
    """One XYZ raster tile (``tile_px`` 256, or 512 for ``@2x``)."""
    span = WORLD_M / 2.0 ** z
    step = span / tile_px
    mx0 = -WORLD_M / 2 + x * span
    my0 = WORLD_M / 2 - y * span
    return render(mx0, my0, step, tile_px, tile_px, fires, at)


__all__ = ["Fire", "FireField", "blank", "day_of_year", "fire_at", "render", "render_static", "render_tile"]
