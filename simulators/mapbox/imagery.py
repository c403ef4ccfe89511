"""Procedural, deterministic satellite-like imagery anchored to the world.

Every pixel is a function of its Web Mercator position only, so the Static Images API and the Raster
Tiles API agree: a mosaic of raster tiles, cropped, shows the same ground as a static image of the
same footprint, and a request is deterministic by (lat, lon, zoom, size).

The scene is boreal Canada: conifer/deciduous forest and muskeg with canopy texture, lakes, farmland
parcels (green, yellow, ploughed brown, bare), clear-cuts, bare-ground patches, gravel and grid
roads, towns, and clouds. Fires (``FireField``) add burn scars with ragged edges, unburned islands,
a scorched rim, sometimes an active front and a smoke plume. Each fire varies by a hash of its
location: some are small or only partly in view, some hidden under smoke, some show no smoke;
brown fields, bare ground, clear-cuts and clouds are confounders in fire-free places.

Noise is value noise evaluated separably on the pixel grid (lattice hashes on a small grid, linear
interpolation along x then y), so a 350×350 image takes a few milliseconds with numpy.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

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


@dataclass(frozen=True)
class Fire:
    lat: float
    lon: float
    hectares: float | None = None


def _fire_params(fire: Fire) -> dict:
    """Per-fire appearance from a hash of its location (deterministic, varied)."""
    digest = hashlib.sha256(f"{fire.lat:.5f},{fire.lon:.5f}".encode()).digest()
    u = [b / 255.0 for b in digest[:12]]
    ha = fire.hectares if fire.hectares and fire.hectares > 0 else 5.0
    radius = math.sqrt(ha * 10_000 / math.pi) * K
    radius = min(max(radius, 25.0 * K), 6000.0 * K)
    kind = "normal"
    smoke = 0.15 + 0.6 * u[1]
    if u[0] < 0.15:  # a fresh spot fire: small scar, no smoke
        kind, radius, smoke = "spot", radius * 0.3, 0.0
    elif u[0] < 0.28:  # under a thick plume
        kind, smoke = "smoky", 0.75 + 0.2 * u[1]
    elif u[0] < 0.40:  # smouldering, no plume
        smoke = 0.0
    off_r = radius * 0.7 * u[2]
    off_a = 2 * math.pi * u[3]
    return {
        "radius": radius, "kind": kind, "smoke": smoke,
        "dx": off_r * math.cos(off_a), "dy": off_r * math.sin(off_a),
        "wind": 2 * math.pi * u[4], "active": u[5] < 0.5, "seed": int.from_bytes(digest[12:16], "big"),
        "plume_len": max(radius * (2.5 + 2 * u[6]), 900.0 * K),
    }


@dataclass
class FireField:
    """The fires the imagery shows, with fast spatial selection."""

    fires: list[Fire] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.set(self.fires)

    def set(self, fires: list[Fire]) -> None:
        self.fires = list(fires)
        self._params = [_fire_params(f) for f in self.fires]
        xy = [lonlat_to_mercator_m(f.lat, f.lon) for f in self.fires]
        self._x = np.array([p[0] for p in xy], dtype=np.float64)
        self._y = np.array([p[1] for p in xy], dtype=np.float64)
        self._reach = np.array([p["radius"] * 1.6 + p["plume_len"] for p in self._params])

    def near(self, cx: float, cy: float, half: float) -> list[tuple[float, float, dict]]:
        if not self.fires:
            return []
        close = (np.abs(self._x - cx) < half + self._reach) & (np.abs(self._y - cy) < half + self._reach)
        return [(self._x[i], self._y[i], self._params[i]) for i in np.nonzero(close)[0]]


def render(mx0: float, my0: float, step: float, width: int, height: int,
           fires: FireField | None = None) -> np.ndarray:
    """RGB uint8 (height, width, 3) image whose top-left corner is at Mercator metres (mx0, my0)."""
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

    veg = 0.75 * n(260, 4) + 0.25 * n(45, 14)
    tex = 0.6 * n(5, 5) + 0.4 * n(1.8, 7)
    bright = 0.55 + 0.9 * tex

    w1 = np.clip((veg - 0.40) / 0.12, 0, 1)
    w2 = np.clip((veg - 0.68) / 0.10, 0, 1)
    img = np.empty((3, height, width), np.float32)
    for ch, (c0, c1, c2) in enumerate(zip((26, 44, 28), (60, 80, 42), (90, 92, 62), strict=True)):
        plane = img[ch]
        np.multiply(w1, np.float32(c1 - c0), out=plane)
        plane += np.float32(c0)
        plane += (np.float32(c2) - plane) * w2
        plane *= bright

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
        palette = np.array([[86, 118, 50], [112, 140, 60], [168, 158, 92], [122, 96, 70], [150, 132, 102],
                            [96, 110, 58]], np.float32)
        pc = palette[np.minimum((parcel * len(palette)).astype(np.int64), len(palette) - 1)]
        rows = 0.9 + 0.2 * n(4, 21)
        pcp = np.moveaxis(pc, -1, 0) * rows[None]
        img = np.where(farm[None], pcp, img)
        roads = ((np.mod(xs, 960 * K) < 8 * K)[None, :] | (np.mod(ys, 960 * K) < 8 * K)[:, None]) & farm
        _put(img, roads, (158, 152, 142))
        forest = land & ~farm
    else:
        forest = land
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
    lo, hi = bounds((1.0, 900, 10))
    if lo < 0.505 and hi > 0.495:
        gravel = (np.abs(n(900, 10) - 0.5) < 0.005) & forest
        _put(img, gravel, (150, 141, 118))

    if bounds((1.0, 2200, 11))[1] > 0.80:
        town = (n(2200, 11) > 0.80) & land
        if town.any():
            roof = cell_hash(xs, ys, 16 * K, 14 * K, 23)
            roofs = np.array([[170, 160, 150], [120, 72, 60], [90, 92, 98], [200, 198, 190]], np.float32)
            rc = np.moveaxis(roofs[np.minimum((roof * 4).astype(np.int64), 3)], -1, 0)
            t = np.where((roof > 0.35)[None], rc, _c((84, 110, 62)))
            street = (np.mod(xs, 110 * K) < 11 * K)[None, :] | (np.mod(ys, 90 * K) < 10 * K)[:, None]
            t = np.where(street[None], _c((96, 96, 98)), t)
            img = np.where(town[None], t, img)

    if elev is not None:
        water = ~land
        depth = np.clip((0.28 - elev) / 0.06, 0, 1)
        wc = np.empty_like(img)
        wc[:] = _c((44, 62, 58))
        _lerp(wc, (16, 30, 42), depth)
        wc *= (0.95 + 0.1 * tex)[None]
        img = np.where(water[None], wc, img)

    if fires is not None:
        cx, cy = mx0 + width * step / 2, my0 - height * step / 2
        for fx, fy, p in fires.near(cx, cy, max(width, height) * step / 2):
            img = _burn(img, xs, ys, fx, fy, p, tex)

    if bounds((1.0, 1500, 12))[1] > 0.78:
        ca = np.clip((n(1500, 12) - 0.78) / 0.12, 0, 0.9)
        if ca.any():
            ca = ca * (0.6 + 0.4 * n(150, 13))
            _lerp(img, (232, 232, 236), ca)
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


def _burn(img, xs, ys, fx, fy, p, tex):
    r = p["radius"]
    seed = p["seed"]
    dx = (xs - (fx + p["dx"])).astype(np.float32)
    dy = (ys - (fy + p["dy"])).astype(np.float32)
    # The scar (ragged distance < 1.12 for the rim) lies within 1.5 radii of its centre.
    cols = np.nonzero(np.abs(dx) < 1.5 * r)[0]
    rows = np.nonzero(np.abs(dy) < 1.5 * r)[0]
    if cols.size and rows.size:
        c0, c1, r0, r1 = cols[0], cols[-1] + 1, rows[0], rows[-1] + 1
        sx, sy, sdx, sdy = xs[c0:c1], ys[r0:r1], dx[c0:c1], dy[r0:r1]
        sub = img[:, r0:r1, c0:c1]
        stex = tex[r0:r1, c0:c1]
        d = np.sqrt(sdx[None, :] ** 2 + sdy[:, None] ** 2) / np.float32(r)
        rag = d + 0.5 * (value_noise(sx, sy, r * 0.55, seed) - 0.5) \
            + 0.15 * (value_noise(sx, sy, max(r * 0.12, 8 * K), seed + 1) - 0.5)
        burn = np.clip((1.0 - rag) / 0.12, 0, 1)
        islands = value_noise(sx, sy, max(r * 0.08, 12 * K), seed + 2) > 0.80
        burn *= np.where(islands, np.float32(0.25), np.float32(1.0))
        ash = np.clip(value_noise(sx, sy, 9 * K, seed + 3) * 1.4 - 0.4, 0, 1)
        char = np.empty_like(sub)
        char[:] = _c((30, 27, 25))
        _lerp(char, (98, 90, 84), ash)
        char *= (0.8 + 0.4 * stex)[None]
        rim = np.clip(1 - np.abs(rag - 1.0) / 0.12, 0, 1) * 0.7
        _lerp(sub, (118, 84, 52), rim)
        _lerp(sub, char, burn)
        if p["active"]:
            front = (np.abs(rag - 1.0) < 0.025) & (stex > 0.55)
            _put(sub, front, (236, 128, 42))
    if p["smoke"] > 0:
        ux, uy = math.cos(p["wind"]), math.sin(p["wind"])
        L = p["plume_len"]
        ox, oy = (dx + p["dx"]) / L, (dy + p["dy"]) / L  # plume from the reported location
        along = ox[None, :] * ux + oy[:, None] * uy
        perp = -ox[None, :] * uy + oy[:, None] * ux
        a = np.clip(along, 0, None)
        dens = p["smoke"] * np.exp(-(perp / (0.12 + 0.35 * a)) ** 2 - a / 1.2)
        dens *= np.clip((along + 0.08) / 0.08, 0, 1)
        if float(dens.max()) > 0.004:
            dens *= 0.55 + 0.9 * value_noise(xs, ys, 160 * K, seed + 4)
            _lerp(img, (206, 204, 200), np.clip(dens, 0, 0.95).astype(np.float32))
    return img


def blank(width: int, height: int, colour: tuple[int, int, int] = (238, 238, 238)) -> np.ndarray:
    """A "no coverage" tile: one flat colour."""
    out = np.empty((height, width, 3), np.uint8)
    out[:] = colour
    return out


WORLD_M = 2 * math.pi * 6_378_137.0


def render_static(lat: float, lon: float, zoom: float, width: int, height: int, *, retina: bool = False,
                  fires: FireField | None = None) -> np.ndarray:
    """The Static Images API's picture: (lon, lat) at the centre, 512-px tile scale at ``zoom``."""
    scale = 2 if retina else 1
    step = WORLD_M / (512 * 2.0 ** zoom) / scale
    cx, cy = lonlat_to_mercator_m(lat, lon)
    w, h = width * scale, height * scale
    return render(cx - w * step / 2, cy + h * step / 2, step, w, h, fires)


def render_tile(z: int, x: int, y: int, tile_px: int, fires: FireField | None = None) -> np.ndarray:
    """One XYZ raster tile (``tile_px`` 256, or 512 for ``@2x``)."""
    span = WORLD_M / 2.0 ** z
    step = span / tile_px
    mx0 = -WORLD_M / 2 + x * span
    my0 = WORLD_M / 2 - y * span
    return render(mx0, my0, step, tile_px, tile_px, fires)
