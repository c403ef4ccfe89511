"""Choose a fire's negatives: places in its region, on land, in the same land cover, away from fires.

Candidates come from :func:`~services.tiler.sample_negatives.candidate_places` (the fire's seeded
sequence in the 10–50 km annulus, none near a known fire). With land-cover matching on, one small
low-zoom context image is fetched around the fire and one around each candidate
(``EMBERWATCH_TILER_CONTEXT_ZOOM``; ``_CONTEXT_SIZE_PX`` 128 for a candidate, ``_FIRE_CONTEXT_SIZE_PX``
256 for the fire, so the ground around a fresh scar and its plume is seen; the same client, retries
and rate-limit budget),
and each candidate is judged by ``services/tiler/match_land_cover.py``: rejected when its footprint
is water, unreadable (cloud, smoke, char) or its cover differs from the fire's beyond the tolerance.

Candidates are judged in their fixed order, as many at once as negatives are still missing, up to
``EMBERWATCH_TILER_NEGATIVE_COVER_TRIES`` per negative. When they run out, the best-matching land
candidates (the smallest cover difference) fill the missing negatives, with a warning and the
``fallback`` metric; if there are none (all water or unreadable) the fire gets fewer negatives. So a
fire costs one context image plus ``k`` to ``k × tries`` more (with the defaults, k = 1 and 6 tries:
2 to 7 context images and 2 tiles, about 5.8 requests per fire on the simulator), once: the caller
records the places and a replay reuses them without any context request. When the fire's own
context image is invalid, blank or more than 90 % unknown (a large fresh scar, a plume), the
candidates are judged for water and readability only (``unmatched``).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import numpy as np

from emberwatch.contracts import FireObserved
from emberwatch.messaging.consumer import PermanentError
from services.tiler.fetch_tile import TileFetcher
from services.tiler.match_land_cover import LandCover, judge, land_cover
from services.tiler.metrics import CONTEXT_IMAGES, NEGATIVE_CANDIDATES, NEGATIVES_CHOSEN
from services.tiler.sample_negatives import NearFire, candidate_places, sample_negatives
from services.tiler.settings import TilerSettings
from services.tiler.validate_image import ImageRejected

log = logging.getLogger(__name__)


@dataclass
class Choice:
    places: list[tuple[float, float]]
    audit: dict = field(default_factory=dict)  # recorded with the places: how they were chosen


class NegativeChooser:
    def __init__(self, settings: TilerSettings, fetcher: TileFetcher, near_fire: NearFire) -> None:
        self.s = settings
        self.fetcher = fetcher
        self.near_fire = near_fire

    def footprint(self, size_px: int) -> float:
        """A tile's width as a share of a context image's width."""
        s = self.s
        return s.tiler_size_px / 2.0 ** (s.tiler_zoom - s.tiler_context_zoom) / size_px

    async def cover(self, lat: float, lon: float, size_px: int | None = None) -> LandCover | None:
        """The land cover around (lat, lon); None when its image is invalid, blank or refused."""
        size_px = size_px or self.s.tiler_context_size_px
        try:
            image = await self.fetcher.fetch_context(lat, lon, size_px)
        except (ImageRejected, PermanentError) as exc:
            CONTEXT_IMAGES.labels("invalid").inc()
            log.warning("context image unusable", extra={"lat": lat, "lon": lon, "error": str(exc)[:120]})
            return None
        CONTEXT_IMAGES.labels("ok").inc()
        return await asyncio.to_thread(land_cover, np.asarray(image), self.footprint(size_px))

    async def choose(self, fire: FireObserved) -> Choice:
        s = self.s
        k = s.tiler_negatives_per_fire
        kw = dict(near_fire=self.near_fire, min_km=s.tiler_negative_min_km, max_km=s.tiler_negative_max_km,
                  exclusion_km=s.tiler_negative_exclusion_km)
        if k <= 0:
            return Choice([])
        if not s.tiler_negative_match_cover:
            places = sample_negatives(fire.fire_key, fire.lat, fire.lon, k=k, **kw)
            NEGATIVES_CHOSEN.labels("region_only").inc(len(places))
            return Choice(places, {"match": "region_only"})
        fire_cover = await self.cover(fire.lat, fire.lon, s.tiler_fire_context_size_px)
        candidates = candidate_places(fire.fire_key, fire.lat, fire.lon, **kw)
        budget = k * s.tiler_negative_cover_tries
        accepted: list[tuple[float, float, float | None]] = []
        near_misses: list[tuple[float, int, float, float]] = []  # (distance, order, lat, lon)
        tally: dict[str, int] = {}
        tried = 0
        while len(accepted) < k and tried < budget:
            batch = [p for _, p in zip(range(min(k - len(accepted), budget - tried)), candidates, strict=False)]
            if not batch:
                break  # the annulus ran out of places away from known fires
            covers = await asyncio.gather(*(self.cover(lat, lon) for lat, lon in batch))
            for (lat, lon), cover in zip(batch, covers, strict=True):
                tried += 1
                if cover is None:
                    reason, verdict = "no_image", None
                else:
                    verdict = judge(fire_cover, cover, tolerance=s.tiler_negative_cover_tolerance,
                                    max_water=s.tiler_negative_max_water)
                    reason = verdict.reason
                tally[reason] = tally.get(reason, 0) + 1
                NEGATIVE_CANDIDATES.labels(reason).inc()
                if verdict is not None and verdict.accepted and len(accepted) < k:
                    accepted.append((lat, lon, verdict.distance))
                elif verdict is not None and verdict.reason == "cover":
                    near_misses.append((verdict.distance, tried, lat, lon))
        how = "matched" if fire_cover is not None and fire_cover.readable_around_fire else "unmatched"
        NEGATIVES_CHOSEN.labels(how).inc(len(accepted))
        places = [(lat, lon) for lat, lon, _ in accepted]
        distances = [None if d is None else round(d, 3) for _, _, d in accepted]
        fallback = []
        for d, _, lat, lon in sorted(near_misses)[: k - len(accepted)]:
            fallback.append((lat, lon))
            distances.append(round(d, 3))
        if fallback:
            NEGATIVES_CHOSEN.labels("fallback").inc(len(fallback))
            log.warning("no candidate matched the fire's land cover: the closest land candidates kept",
                        extra={"fire_key": fire.fire_key, "kept": len(fallback), "tried": tried,
                               "rejected": tally, "cover_distance": distances[len(places):]})
        places += fallback
        if len(places) < k:
            NEGATIVES_CHOSEN.labels("missing").inc(k - len(places))
            log.warning("fewer negatives than asked: no land candidate away from known fires",
                        extra={"fire_key": fire.fire_key, "found": len(places), "tried": tried,
                               "rejected": tally})
        audit = {"match": how, "fire_cover": fire_cover.rounded() if fire_cover else None,
                 "cover_distance": distances, "fallback": len(fallback), "tried": tried, "rejected": tally}
        log.info("negatives chosen", extra={"fire_key": fire.fire_key, **audit})
        return Choice(places, audit)
