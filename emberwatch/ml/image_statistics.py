"""Simple hand statistics of an image: what a model could learn instead of fire.

These are the honest baseline of the leakage check (docs/architecture.md#data-honesty) and of
``benchmarks/bench_imagery.py``: if a classifier on these global numbers does as well as the CNN,
the CNN has most likely learned a colour or brightness cue, not fire. Pure numpy, one definition
for the trainer, the benchmark and the tests.

Per image (RGB uint8, any size), in this order (``STATISTICS``):

* ``mean_r``, ``mean_g``, ``mean_b`` — channel means, in [0, 1];
* ``std_r``, ``std_g``, ``std_b`` — channel spatial spreads, in [0, 1];
* ``value_std`` — spread of the brightness (max channel);
* ``dark`` — share of pixels with brightness < 0.25;
* ``grey`` — share with saturation < 0.15;
* ``dark_grey`` — share both darker than 0.35 and less saturated than 0.20 (char, ash, asphalt);
* ``orange`` — share with hue 10–45°, saturation > 0.5, brightness > 0.5 (a fire front);
* ``saturated`` — share with saturation > 0.5;
* ``green`` — share where green is the largest channel and saturation > 0.15;
* ``edges`` — share of pixels whose brightness gradient exceeds 0.12 (texture, boundaries).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

STATISTICS: tuple[str, ...] = (
    "mean_r", "mean_g", "mean_b", "std_r", "std_g", "std_b", "value_std",
    "dark", "grey", "dark_grey", "orange", "saturated", "green", "edges",
)


def image_statistics(rgb: np.ndarray) -> np.ndarray:
    """The ``STATISTICS`` of one (H, W, 3) image as a float32 vector."""
    img = np.asarray(rgb)
    if img.ndim != 3 or img.shape[-1] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {img.shape}")
    x = img.astype(np.float32) / 255.0
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    v = x.max(axis=-1)
    mn = x.min(axis=-1)
    chroma = v - mn
    s = np.where(v > 0, chroma / np.maximum(v, 1e-6), 0.0)
    # Hue in degrees (only where chroma > 0), the usual hexcone formula.
    safe = np.maximum(chroma, 1e-6)
    hue = np.where(v == r, ((g - b) / safe) % 6.0,
                   np.where(v == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0)) * 60.0
    gy = np.abs(np.diff(v, axis=0))[:, :-1]
    gx = np.abs(np.diff(v, axis=1))[:-1, :]
    grad = np.sqrt(gx * gx + gy * gy)
    out = np.array([
        r.mean(), g.mean(), b.mean(), r.std(), g.std(), b.std(), v.std(),
        (v < 0.25).mean(),
        (s < 0.15).mean(),
        ((v < 0.35) & (s < 0.20)).mean(),
        ((chroma > 0) & (hue >= 10) & (hue <= 45) & (s > 0.5) & (v > 0.5)).mean(),
        (s > 0.5).mean(),
        ((g >= r) & (g >= b) & (s > 0.15)).mean(),
        (grad > 0.12).mean() if grad.size else 0.0,
    ], dtype=np.float32)
    return out


def statistics_matrix(images: Iterable[np.ndarray] | np.ndarray) -> np.ndarray:
    """(N, len(STATISTICS)) for a batch of images (an (N, H, W, 3) array or an iterable of images)."""
    rows = [image_statistics(im) for im in images]
    if not rows:
        return np.empty((0, len(STATISTICS)), np.float32)
    return np.stack(rows)
