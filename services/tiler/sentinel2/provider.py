"""The Sentinel-2 provider: a fire in, its post-fire tile and pre-fire control out (or when to retry, or why not).

Blocking (pystac-client and GDAL); the tiler calls ``fetch_pair`` in a worker thread. Per fire: one STAC
search over the look-back before the start up to the end (or now); the SCL of the fire's box for every
candidate during the fire and, latest first, for those before it until one is clear; then the six
reflectance bands of the two chosen scenes, read concurrently, composited and scored.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from services.tiler.sentinel2.composites import Composite, composite
from services.tiler.sentinel2.indices import FireEvidence, fire_evidence
from services.tiler.sentinel2.pairing import Decision, PairPolicy, Ready, decide, search_window
from services.tiler.sentinel2.scene_choice import Assessed, clear_mask, cloud_fraction
from services.tiler.sentinel2.scenes import Scene
from services.tiler.sentinel2.search import StacCatalogue, search_scenes
from services.tiler.sentinel2.windowed_read import BandRead, FireBox, read_box

REFLECTANCE_BANDS = ("red", "green", "blue", "nir08", "swir16", "swir22")


@dataclass(frozen=True)
class FireWindow:
    fire_key: str
    lon: float
    lat: float
    start: datetime
    end: datetime | None = None


@dataclass
class Sentinel2Tile:
    """One acquisition of the fire's box: both composites, its clouds and what reading it cost."""

    scene: Scene
    cloud_fraction: float
    true_colour: Composite
    swir: Composite
    bytes_read: int


@dataclass
class PairResult:
    decision: Decision
    post: Sentinel2Tile | None = None
    pre: Sentinel2Tile | None = None
    evidence: FireEvidence | None = None
    bytes_read: int = 0  # everything read for this fire, SCL of rejected scenes included
    seconds: float = 0.0
    refused_items: list[str] = field(default_factory=list)


@dataclass
class Sentinel2Provider:
    catalogue: StacCatalogue = field(default_factory=StacCatalogue)
    policy: PairPolicy = field(default_factory=PairPolicy)
    box_side_m: float = 2240.0  # 224 px of 10 m
    size_px: int = 224  # the model's tile size
    max_item_cloud_cover: float = 95.0  # skip granules this cloudy without reading their SCL
    workers: int = 8

    def box(self, fire: FireWindow) -> FireBox:
        return FireBox(lon=fire.lon, lat=fire.lat, side_m=self.box_side_m, size_px=self.size_px)

    def fetch_pair(self, fire: FireWindow, now: datetime) -> PairResult:
        started = time.perf_counter()
        first, last = search_window(fire.start, fire.end, now, self.policy)
        found = search_scenes(self.catalogue, fire.lon, fire.lat, first, last)
        candidates = [s for s in found.scenes
                      if (s.cloud_cover is None or s.cloud_cover <= self.max_item_cloud_cover)
                      and (s.catalogued_at is None or s.catalogued_at <= now)]
        box = self.box(fire)
        scl: dict[str, BandRead] = {}
        with ThreadPoolExecutor(self.workers) as pool:
            def assess(scenes: list[Scene]) -> list[Assessed]:
                reads = list(pool.map(lambda s: read_box(s.bands["scl"], box, categorical=True), scenes))
                out = []
                for scene, read in zip(scenes, reads, strict=True):
                    scl[scene.scene_id] = read
                    out.append(Assessed(scene.scene_id, scene.acquired_at, scene.catalogued_at,
                                        cloud_fraction(read.data)))
                return out

            last_time = min(fire.end, now) if fire.end else now
            assessed = assess([s for s in candidates if fire.start <= s.acquired_at <= last_time])
            before = sorted((s for s in candidates if s.acquired_at < fire.start), key=lambda s: s.acquired_at,
                            reverse=True)
            for i in range(0, len(before), 4):  # latest first, until one is clear
                batch = assess(before[i:i + 4])
                assessed += batch
                if any(a.cloud_fraction <= self.policy.max_cloud_fraction for a in batch):
                    break
            decision = decide(assessed, fire.start, fire.end, now, self.policy)
            result = PairResult(decision=decision, refused_items=found.refused,
                                bytes_read=sum(r.bytes_read for r in scl.values()))
            if isinstance(decision, Ready):
                by_id = {s.scene_id: s for s in candidates}
                chosen = [(decision.post, by_id[decision.post.scene_id])]
                if decision.pre is not None:
                    chosen.append((decision.pre, by_id[decision.pre.scene_id]))
                jobs = [(scene, band) for _, scene in chosen for band in REFLECTANCE_BANDS]
                reads = dict(zip(((s.scene_id, b) for s, b in jobs),
                                 pool.map(lambda job: read_box(job[0].bands[job[1]], box), jobs), strict=True))
                tiles = [self._tile(a, s, {b: reads[(s.scene_id, b)] for b in REFLECTANCE_BANDS}, scl[s.scene_id])
                         for a, s in chosen]
                result.post = tiles[0]
                result.pre = tiles[1] if len(tiles) > 1 else None
                result.bytes_read += sum(r.bytes_read for r in reads.values())
                post_bands = {b: reads[(chosen[0][1].scene_id, b)].data for b in REFLECTANCE_BANDS}
                pre_bands = ({b: reads[(chosen[1][1].scene_id, b)].data for b in REFLECTANCE_BANDS}
                             if len(chosen) > 1 else None)
                result.evidence = fire_evidence(
                    post_bands, pre_bands, post_clear=clear_mask(scl[chosen[0][1].scene_id].data),
                    pre_clear=clear_mask(scl[chosen[1][1].scene_id].data) if len(chosen) > 1 else None)
        result.seconds = time.perf_counter() - started
        return result

    @staticmethod
    def _tile(assessed: Assessed, scene: Scene, reads: dict[str, BandRead], scl: BandRead) -> Sentinel2Tile:
        grid = reads["red"]
        data = {band: read.data for band, read in reads.items()}
        return Sentinel2Tile(
            scene=scene, cloud_fraction=assessed.cloud_fraction,
            true_colour=composite("true-colour", data, grid.crs, grid.transform),
            swir=composite("swir", data, grid.crs, grid.transform),
            bytes_read=sum(r.bytes_read for r in reads.values()) + scl.bytes_read)
