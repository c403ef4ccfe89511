"""Coarse land cover from a small low-zoom image, and whether two places look alike: pure functions.

There is no land-cover dataset offline, so a place's cover is read from imagery: a small context
image (zoom 12, 128 px by default: about 2.4 km of Mercator ground, three times a tile's width) is
cut into 4×4-pixel blocks, and each block is classified by simple rules on its mean colour and its
texture (the spread of brightness inside the block). Blocks average away sensor grain and JPEG
noise; texture separates a canopy (rough) from a field or a lake (smooth) where colour alone cannot.

First a veil of haze is removed (:func:`dehaze`, the dark-channel prior, per 32-px patch). Then
the rules, in order of precedence (``r, g, b`` the block's mean colour, ``L`` its mean brightness,
``cv`` the brightness spread over ``L``, ``chroma`` = max − min of ``r, g, b``):

* ``unknown`` — bright and neutral (cloud, smoke, haze, snow: chroma < 40 and ``min(r,g,b) > 170``,
  or the block's darkest value above 95, or smooth and L ≥ 110), or dark-to-mid grey (char and ash
  of a burn scar, asphalt, deep shadow, murky water: ``L < 80``, chroma < 14, not water). The picture cannot say
  what ground lies there; these blocks are left out of the comparison, so a fire's own scar or
  plume does not make its cover look unlike its neighbours'.
* ``water`` — smooth (cv < 0.16, or a spread under 6 grey levels for dark water), not bright
  (L < 150), blue clearly over red and about as much as green (``b > r + 8``, ``b >= 0.9 g``), in
  areas at least three blocks wide (a morphological opening: a shadowed courtyard is no lake).
* ``built`` — neutral grey (chroma < 30, not the grey above), not dark (L ≥ 60) and rough
  (cv ≥ 0.1): roofs and streets.
* ``forest`` — green (``g > r + 3``, ``g > b + 8``) and dark (L < 70) or rough (cv ≥ 0.14).
* ``open`` — green and smooth: crops, grass, meadows.
* ``bare`` — everything else on land: brown or tan soil, ploughed fields, clear-cuts, rock.

A place's cover is the share of each class among its known blocks. Two covers differ by their total
variation distance (half the L1 distance of the shares, 0 = identical, 1 = disjoint). A candidate
negative is rejected when water covers its tile's footprint (the central window of the context image
the tile would show) beyond a share, and when its cover differs from its fire's beyond a tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

CLASSES = ("water", "forest", "open", "bare", "built")
UNKNOWN = len(CLASSES)  # the class index of blocks that cannot be read
BLOCK_PX = 4
MAX_UNKNOWN = 0.7  # a place with more unknown blocks than this has no readable cover
MAX_FIRE_UNKNOWN = 0.9  # a fire's own scar and plume may hide most of its context: 10 % known will do
MAX_FOOTPRINT_UNKNOWN = 0.5  # a negative whose own footprint is mostly unreadable is not taken


@dataclass(frozen=True)
class LandCover:
    """Shares of the known classes (summing to 1, or empty when nothing could be read)."""

    shares: dict[str, float] = field(default_factory=dict)
    unknown: float = 0.0  # share of blocks that could not be read (cloud, smoke, char, shadow)
    footprint_water: float = 0.0  # share of water among the known blocks of the tile's own footprint
    footprint_unknown: float = 0.0  # share of unknown blocks in the tile's own footprint

    @property
    def readable(self) -> bool:
        return bool(self.shares) and self.unknown <= MAX_UNKNOWN

    @property
    def readable_around_fire(self) -> bool:
        """Readable enough to stand for a fire's ground: its scar and smoke are unknown blocks, so
        the ground around them (at least a tenth of the image) is what is compared."""
        return bool(self.shares) and self.unknown <= MAX_FIRE_UNKNOWN

    def dominant(self) -> str | None:
        return max(self.shares, key=self.shares.get) if self.shares else None

    def rounded(self) -> dict[str, float]:
        """For logs and the registry: the shares to two decimals, the zeros left out."""
        out = {k: round(v, 2) for k, v in self.shares.items() if round(v, 2) > 0}
        out["unknown"] = round(self.unknown, 2)
        out["footprint_water"] = round(self.footprint_water, 2)
        out["footprint_unknown"] = round(self.footprint_unknown, 2)
        return out


HAZE_RGB = np.array([198, 200, 204], np.float32)  # the colour thin cloud and haze tend to
CLEAR_DARK = 5.0  # the darkest values of a clear image (shadows, water, conifers, grain)
HAZE_WINDOW_PX = 32
MAX_HAZE = 0.7


def dehaze(rgb: np.ndarray, window: int = HAZE_WINDOW_PX) -> np.ndarray:
    """Undo a veil of haze (the dark-channel prior): in clear imagery every patch of some size holds
    pixels with one channel near black; haze ``a`` lifts them to ``a·A``. ``a`` is read per
    ``window``-px patch from the 5th percentile of the darkest channel, smoothed over the
    neighbouring patches (haze varies slowly), capped at the whole image's estimate plus 0.08 (a
    bright plain field has no dark pixel either), and the veil removed: ``(I − a·A) / (1 − a)``."""
    a = np.asarray(rgb, dtype=np.float32)[..., :3]
    h, w = a.shape[:2]
    rows, cols = max(1, h // window), max(1, w // window)
    dark = a.min(axis=-1)
    alpha = np.zeros((rows, cols), np.float32)
    for r in range(rows):
        for c in range(cols):
            r1 = h if r == rows - 1 else (r + 1) * window
            c1 = w if c == cols - 1 else (c + 1) * window
            d = float(np.percentile(dark[r * window:r1, c * window:c1], 5))
            alpha[r, c] = (d - CLEAR_DARK) / (float(HAZE_RGB.min()) - CLEAR_DARK)
    # A bright plain field or roof has no dark pixel either: no patch may be hazier than the whole
    # image's darkest values allow, plus a margin.
    overall = (float(np.percentile(dark, 2)) - CLEAR_DARK) / (float(HAZE_RGB.min()) - CLEAR_DARK)
    alpha = np.clip(np.minimum(alpha, overall + 0.08), 0.0, MAX_HAZE)
    padded = np.pad(alpha, 1, mode="edge")
    alpha = sum(padded[dy:dy + rows, dx:dx + cols] for dy in range(3) for dx in range(3)) / 9.0
    if float(alpha.max()) <= 0.02:
        return a
    ry = np.minimum(np.arange(h) // window, rows - 1)
    cx = np.minimum(np.arange(w) // window, cols - 1)
    full = alpha[ry[:, None], cx[None, :]][..., None]
    return np.clip((a - full * HAZE_RGB) / (1.0 - full), 0, 255)


def classify_blocks(rgb: np.ndarray, block: int = BLOCK_PX) -> np.ndarray:
    """Class index (into :data:`CLASSES`, or :data:`UNKNOWN`) of each ``block``×``block`` block
    of the image, after :func:`dehaze`."""
    a = np.asarray(rgb, dtype=np.float32)
    if a.ndim != 3 or a.shape[2] < 3:
        raise ValueError("expected an RGB image (h, w, 3)")
    a = dehaze(a)
    h, w = (a.shape[0] // block) * block, (a.shape[1] // block) * block
    if h == 0 or w == 0:
        raise ValueError(f"image smaller than one {block}-px block")
    blocks = a[:h, :w].reshape(h // block, block, w // block, block, 3)
    mean = blocks.mean(axis=(1, 3))
    lum = blocks @ np.array([0.299, 0.587, 0.114], np.float32)
    L = lum.mean(axis=(1, 3))
    spread = lum.std(axis=(1, 3))
    cv = spread / np.maximum(L, 1.0)
    r, g, b = mean[..., 0], mean[..., 1], mean[..., 2]
    chroma = mean.max(axis=-1) - mean.min(axis=-1)

    water = _opening(((cv < 0.16) | (spread < 6)) & (L < 150) & (b > r + 8) & (b >= 0.9 * g))
    dark = blocks.min(axis=-1).min(axis=(1, 3))  # the block's darkest channel value: haze lifts it
    cloud = (chroma < 40) & ((mean.min(axis=-1) > 170) | (dark > 95) | ((L >= 110) & (cv < 0.1)))
    char = (L < 80) & (chroma < 14) & ~water
    built = (chroma < 30) & (L >= 60) & (cv >= 0.1)
    green = (g > r + 3) & (g > b + 8)
    forest = green & ((L < 70) | (cv >= 0.14))
    open_ = green & ~forest

    out = np.full(L.shape, CLASSES.index("bare"), np.int8)
    # Later assignments win: the order below is the rules' order reversed.
    out[open_] = CLASSES.index("open")
    out[forest] = CLASSES.index("forest")
    out[built] = CLASSES.index("built")
    out[water] = CLASSES.index("water")
    out[char | cloud] = UNKNOWN
    return out


def _shift_all(mask: np.ndarray, op) -> np.ndarray:
    """``op`` (np.logical_and / or) of the 3×3 neighbourhood of every cell, edges replicated."""
    p = np.pad(mask, 1, mode="edge")
    h, w = mask.shape
    out = p[1:1 + h, 1:1 + w].copy()
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            op(out, p[dy:dy + h, dx:dx + w], out=out)
    return out


def _opening(mask: np.ndarray) -> np.ndarray:
    """Morphological opening (3×3): keeps areas at least three blocks wide, drops specks and
    threads (a shadowed courtyard or a dark tree crown is not a lake)."""
    return _shift_all(_shift_all(mask, np.logical_and), np.logical_or) & mask


def land_cover(rgb: np.ndarray, footprint: float = 0.34, block: int = BLOCK_PX) -> LandCover:
    """The cover of a context image; ``footprint`` is the tile's width as a share of the image's,
    centred (e.g. a 350-px zoom-15 tile in a 128-px zoom-12 image: 350 / 8 / 128 = 0.34)."""
    cls = classify_blocks(rgb, block)
    n = cls.size
    counts = np.bincount(cls.ravel(), minlength=UNKNOWN + 1)
    known = n - int(counts[UNKNOWN])
    shares = {c: float(counts[i]) / known for i, c in enumerate(CLASSES)} if known else {}
    rows, cols = cls.shape
    fr = max(1, round(rows * min(max(footprint, 0.0), 1.0)))
    fc = max(1, round(cols * min(max(footprint, 0.0), 1.0)))
    r0, c0 = (rows - fr) // 2, (cols - fc) // 2
    centre = cls[r0:r0 + fr, c0:c0 + fc]
    centre_known = centre[centre != UNKNOWN]
    water_i = CLASSES.index("water")
    fw = float((centre_known == water_i).mean()) if centre_known.size else 0.0
    return LandCover(shares, float(counts[UNKNOWN]) / n, fw, 1.0 - centre_known.size / centre.size)


def cover_distance(a: LandCover, b: LandCover) -> float:
    """Total variation distance between two covers' shares (0 identical … 1 disjoint)."""
    return 0.5 * sum(abs(a.shares.get(c, 0.0) - b.shares.get(c, 0.0)) for c in CLASSES)


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    reason: str  # matched, water, cover, unreadable
    distance: float | None


def judge(fire: LandCover | None, candidate: LandCover, *, tolerance: float, max_water: float) -> Verdict:
    """Whether a candidate negative may stand for its fire's ground.

    ``water``: water covers more than ``max_water`` of the candidate's footprint. ``unreadable``:
    the candidate's context, or its footprint, is mostly cloud, smoke, char or dark ground. ``cover``: its cover differs from the
    fire's by more than ``tolerance``. With no readable fire cover, any land candidate matches."""
    if candidate.footprint_water > max_water:
        return Verdict(False, "water", None)
    if not candidate.readable or candidate.footprint_unknown > MAX_FOOTPRINT_UNKNOWN:
        return Verdict(False, "unreadable", None)
    if fire is None or not fire.readable_around_fire:
        return Verdict(True, "matched", None)
    d = cover_distance(fire, candidate)
    return Verdict(d <= tolerance, "matched" if d <= tolerance else "cover", d)
