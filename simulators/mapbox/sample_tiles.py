"""Labelled tiles drawn by the Mapbox simulator's renderer, decoded as the services decode them: half at
fires, half 10-50 km away from each. What the benchmarks and ``scripts/gpu-check`` measure on."""

from __future__ import annotations

import numpy as np


def sample_tiles(n: int, size: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """``n`` tiles (uint8, (n, size, size, 3)) in (fire, fire-free) pairs, and their labels (1 = fire)."""
    from emberwatch.common.triton_client import png_bytes
    from emberwatch.ml.images import decode_image
    from simulators.mapbox.imagery import Fire, FireField, render_static

    rng = np.random.default_rng(seed)
    fires = [Fire(lat=float(rng.uniform(49, 58)), lon=float(rng.uniform(-125, -70)),
                  hectares=float(rng.uniform(5, 5000))) for _ in range(n // 2)]
    fire_field = FireField()
    fire_field.set(fires)
    images, labels = [], []
    for f in fires:
        for label, (lat, lon) in ((1, (f.lat, f.lon)),
                                  (0, (f.lat + rng.choice([-1, 1]) * rng.uniform(0.1, 0.45),
                                       f.lon + rng.choice([-1, 1]) * rng.uniform(0.15, 0.6)))):
            raw = render_static(lat, lon, 15, 350, 350, fires=fire_field)
            images.append(decode_image(png_bytes(raw), size))
            labels.append(label)
    return np.stack(images), np.array(labels)
