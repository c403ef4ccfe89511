"""Fire-free places matched to a fire: a pure, deterministic function (docs/architecture.md#data-honesty).

Candidates are drawn uniformly by area in the annulus ``min_km``–``max_km`` around the fire (same
region), from a random generator seeded by the fire key, so the same fire always proposes the same
sequence. A candidate closer than ``exclusion_km`` to any known fire is rejected. The caller records
the chosen places per fire, so a replay reuses them even after more fires become known.
:func:`candidate_places` yields the candidates one by one, for a caller that also judges each by its
land cover (``services/tiler/choose_negatives.py``); :func:`sample_negatives` takes the first ``k``.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable, Iterator

from emberwatch.common.geo import MAX_MERCATOR_LAT, destination

NearFire = Callable[[float, float, float], bool]


def seed_for(fire_key: str) -> int:
    return int.from_bytes(hashlib.sha256(f"negatives|{fire_key}".encode()).digest()[:8], "big")


def candidate_places(fire_key: str, lat: float, lon: float, *, near_fire: NearFire, min_km: float = 10.0,
                     max_km: float = 50.0, exclusion_km: float = 10.0,
                     max_tries: int = 200) -> Iterator[tuple[float, float]]:
    """The fire's candidate places in their fixed order, those near a known fire left out (checked
    when each is drawn, so fires learnt meanwhile count); at most ``max_tries`` draws."""
    if not 0 < min_km <= max_km:
        raise ValueError("need 0 < min_km <= max_km")
    rng = random.Random(seed_for(fire_key))
    for _ in range(max_tries):
        r = math.sqrt(rng.uniform(min_km**2, max_km**2))
        bearing = rng.uniform(0.0, 360.0)
        plat, plon = destination(lat, lon, bearing, r)
        if abs(plat) > MAX_MERCATOR_LAT:
            continue
        if exclusion_km > 0 and near_fire(plat, plon, exclusion_km):
            continue
        yield round(plat, 6), round(plon, 6)


def sample_negatives(fire_key: str, lat: float, lon: float, *, k: int, near_fire: NearFire,
                     min_km: float = 10.0, max_km: float = 50.0, exclusion_km: float = 10.0,
                     max_tries: int = 200) -> list[tuple[float, float]]:
    """Up to ``k`` (lat, lon) places for ``fire_key``; ``near_fire(lat, lon, km)`` says whether a
    known fire lies within ``km`` of a place. Fewer than ``k`` if ``max_tries`` candidates ran out."""
    chosen: list[tuple[float, float]] = []
    if k <= 0:
        if not 0 < min_km <= max_km:
            raise ValueError("need 0 < min_km <= max_km")
        return chosen
    for place in candidate_places(fire_key, lat, lon, near_fire=near_fire, min_km=min_km, max_km=max_km,
                                  exclusion_km=exclusion_km, max_tries=max_tries):
        chosen.append(place)
        if len(chosen) >= k:
            break
    return chosen
