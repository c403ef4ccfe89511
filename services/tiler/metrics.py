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
TILES_SKIPPED = Counter("emberwatch_tiler_tiles_skipped_total",
                        "Tiles not refetched because they were already emitted (replays).", ["label"])
AUTH_BREAKER_OPEN = Gauge("emberwatch_tiler_auth_breaker_open",
                          "1 while Mapbox rejects the token and requests are held back.")
MAPBOX_DOWN = Gauge("emberwatch_tiler_mapbox_unavailable", "1 while Mapbox is unreachable/failing.")
