"""Fire-free places matched to a fire: a pure, deterministic function (docs/architecture.md#data-honesty).

Candidates are drawn uniformly by area in the annulus ``min_km``–``max_km`` around the fire (same
region), from a random generator seeded by the fire key, so the same fire always proposes the same
sequence. A candidate closer than ``exclusion_km`` to any known fire is rejected. The caller records
the chosen places per fire, so a replay reuses them even after more fires become known.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable

from emberwatch.common.geo import MAX_MERCATOR_LAT, destination

NearFire = Callable[[float, float, float], bool]


def seed_for(fire_key: str) -> int:
    return int.from_bytes(hashlib.sha256(f"negatives|{fire_key}".encode()).digest()[:8], "big")


def sample_negatives(fire_key: str, lat: float, lon: float, *, k: int, near_fire: NearFire,
                     min_km: float = 10.0, max_km: float = 50.0, exclusion_km: float = 10.0,
                     max_tries: int = 200) -> list[tuple[float, float]]:
    """Up to ``k`` (lat, lon) places for ``fire_key``; ``near_fire(lat, lon, km)`` says whether a
    known fire lies within ``km`` of a place. Fewer than ``k`` if ``max_tries`` candidates ran out."""
    if not 0 < min_km <= max_km:
        raise ValueError("need 0 < min_km <= max_km")
    rng = random.Random(seed_for(fire_key))
    chosen: list[tuple[float, float]] = []
    for _ in range(max_tries):
        if len(chosen) >= k:
            break
        r = math.sqrt(rng.uniform(min_km**2, max_km**2))
        bearing = rng.uniform(0.0, 360.0)
        plat, plon = destination(lat, lon, bearing, r)
        if abs(plat) > MAX_MERCATOR_LAT:
            continue
        if exclusion_km > 0 and near_fire(plat, plon, exclusion_km):
            continue
        chosen.append((round(plat, 6), round(plon, 6)))
    return chosen
