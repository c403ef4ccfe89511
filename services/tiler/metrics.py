"""The tiler's Prometheus metrics (``emberwatch_tiler_*``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter("emberwatch_tiler_requests_total",
                   "Mapbox requests by API and HTTP status (or timeout/connection).", ["api", "status"])
RETRIES = Counter("emberwatch_tiler_retries_total",
                  "Mapbox request retries by reason (429, 5xx, timeout, connection, outage, image).",
                  ["reason"])
FETCH_SECONDS = Histogram("emberwatch_tiler_fetch_seconds", "Latency of one Mapbox request.", ["api"],
                          buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2, 5, 10, 30))
IN_FLIGHT = Gauge("emberwatch_tiler_requests_in_flight", "Mapbox requests in flight now.")
TILES_STORED = Counter("emberwatch_tiler_tiles_stored_total",
                       "Tiles put in the tile store, by label and whether the bytes were new.",
                       ["label", "outcome"])
TILES_REJECTED = Counter("emberwatch_tiler_tiles_rejected_total",
                         "Images rejected by validation, by reason.", ["reason"])
TILES_EMITTED = Counter("emberwatch_tiler_tiles_emitted_total", "TileReady events published.", ["label"])
ORPHAN_TILES_DELETED = Counter("emberwatch_tiler_orphan_tiles_deleted_total",
                               "Tiles stored but never announced, deleted after the grace period.")
ORPHAN_BYTES_DELETED = Counter("emberwatch_tiler_orphan_bytes_deleted_total",
                               "Bytes of tiles stored but never announced, deleted after the grace period.")
TILES_SKIPPED = Counter("emberwatch_tiler_tiles_skipped_total",
                        "Tiles not refetched because they were already emitted (replays).", ["label"])
AUTH_BREAKER_OPEN = Gauge("emberwatch_tiler_auth_breaker_open",
                          "1 while Mapbox rejects the token and requests are held back.")
MAPBOX_DOWN = Gauge("emberwatch_tiler_mapbox_unavailable", "1 while Mapbox is unreachable/failing.")
CONTEXT_IMAGES = Counter("emberwatch_tiler_context_images_total",
                         "Land-cover context images fetched, by outcome (ok, invalid).", ["outcome"])
NEGATIVE_CANDIDATES = Counter(
    "emberwatch_tiler_negative_candidates_total",
    "Candidate negatives judged by land cover, by verdict (matched, water, cover, unreadable, no_image).",
    ["verdict"])
NEGATIVES_CHOSEN = Counter(
    "emberwatch_tiler_negatives_chosen_total",
    "Negatives chosen, by how: matched (same land cover), fallback (best land candidate, no match), "
    "unmatched (the fire's cover unreadable), region_only (matching off), missing (none found).", ["how"])
TILES_RELABELLED = Counter("emberwatch_tiler_tiles_relabelled_total",
                           "TileRelabelled events published (a later fire near a negative), by action.",
                           ["action"])
NEGATIVES_DROPPED = Counter(
    "emberwatch_tiler_negatives_dropped_total",
    "Negatives not announced because a fire became known near them before their tile was.")
SENTINEL2_PAIRS = Counter(
    "emberwatch_tiler_sentinel2_pairs_total",
    "Sentinel-2 attempts by outcome: made (tiles announced), retried (no clear scene yet), outage (STAC or "
    "COG failure, tried again), given_up.", ["outcome"])
SENTINEL2_FIRE_SECONDS = Histogram(
    "emberwatch_tiler_sentinel2_fire_seconds", "Seconds of one fire's Sentinel-2 search and reads.",
    buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120))
SENTINEL2_TILE_BYTES = Histogram(
    "emberwatch_tiler_sentinel2_tile_bytes", "Bytes read from the COGs for one Sentinel-2 scene of a fire's box.",
    buckets=(1e5, 2.5e5, 5e5, 1e6, 2e6, 4e6, 8e6, 16e6, 64e6))
SENTINEL2_PENDING = Gauge("emberwatch_tiler_sentinel2_pending_fires",
                          "Fires waiting for a clear Sentinel-2 scene (or for the catalogue to answer).")
