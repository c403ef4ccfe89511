"""Synthetic labelled tiles in a tile store: land-cover textures, burn scars on the wildfire ones."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from emberwatch.contracts import TileReady


@dataclass(frozen=True)
class SynthTile:
    tile_id: str
    path: Path
    label: str
    split: str

    @property
    def uri(self) -> str:
        return self.path.resolve().as_uri()  # as the tile store writes it (its root resolved)


def scene(rng: np.random.Generator, size: int, fire: bool) -> np.ndarray:
    """Green/brown mottled land; a fire scene gets dark, irregular burn-scar blobs."""
    base = np.array([60, 110, 50], float) if rng.random() < 0.6 else np.array([120, 100, 60], float)
    coarse = rng.normal(0, 1, (size // 8 + 1, size // 8 + 1, 3))
    noise = np.kron(coarse, np.ones((8, 8, 1)))[:size, :size] * 18 + rng.normal(0, 8, (size, size, 3))
    img = base + noise
    if fire:
        yy, xx = np.mgrid[:size, :size]
        for _ in range(rng.integers(2, 4)):
            cy, cx = rng.integers(size // 6, size - size // 6, 2)
            r = rng.uniform(size / 7, size / 3.5)
            mask = ((yy - cy) ** 2 + (xx - cx) ** 2) < r ** 2 * rng.uniform(0.6, 1.2)
            img[mask] = img[mask] * 0.25 + np.array([20, 15, 12])
    return np.clip(img, 0, 255).astype(np.uint8)


def write_tiles(store: Path, n: int, *, seed: int, size: int = 64,
                splits=(("train", 0.6), ("val", 0.2), ("test", 0.2))) -> list[SynthTile]:
    """``n`` PNG tiles, half wildfire, assigned to splits in the given proportions (deterministic)."""
    store.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = [s for s, _ in splits]
    cuts = np.cumsum([p for _, p in splits])
    tiles = []
    for i in range(n):
        label = "wildfire" if i % 2 == 0 else "nowildfire"
        frac = ((i // 2) + 0.5) / max(1, n // 2)
        split = names[min(int(np.searchsorted(cuts, frac, side="right")), len(names) - 1)]
        buf = io.BytesIO()
        Image.fromarray(scene(rng, size, label == "wildfire")).save(buf, format="PNG")
        data = buf.getvalue()
        tile_id = hashlib.sha256(data).hexdigest()
        path = store / tile_id[:2] / f"{tile_id}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        tiles.append(SynthTile(tile_id, path, label, split))
    return tiles


def tile_event(tile: SynthTile, *, size_px: int = 64) -> TileReady:
    return TileReady.create(
        producer="test-tiler", tile_id=tile.tile_id, uri=tile.uri, lat=55.0, lon=-115.0, zoom=15,
        size_px=size_px, label=tile.label, split=tile.split, fire_key=f"fire-{tile.tile_id[:6]}",
        provider="synthetic",
    )
