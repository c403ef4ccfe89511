"""The tiler's settings (``EMBERWATCH_TILER_*``) on top of the common ones.

The Mapbox token comes from the common ``EMBERWATCH_MAPBOX_TOKEN`` (re-read from the environment
while the auth circuit breaker is open) or from the secrets file ``EMBERWATCH_TILER_TOKEN_FILE``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from emberwatch.common.config import Settings

SERVICE = "tiler"  # the service's name: logs, metrics, client ids, event producer

class TilerSettings(Settings):
    # --- imagery ---------------------------------------------------------------------------------
    tiler_mode: Literal["static", "raster"] = Field(
        "static", description="static: Static Images API (one request per tile); raster: Raster Tiles "
        "API @2x tiles mosaicked and centre-cropped to the same ground footprint.")
    tiler_zoom: int = Field(15, ge=0, le=22, description="Zoom of every tile (reference dataset: 15).")
    tiler_size_px: int = Field(350, ge=1, le=1280, description="Tile width and height in pixels (350).")
    tiler_style: str = Field("mapbox/satellite-v9", description="Static Images API style (user/style).")
    tiler_tileset: str = Field("mapbox.satellite", description="Raster Tiles API tileset id.")
    tiler_raster_format: str = Field("jpg90", description="Raster tile format suffix (jpg90, png...).")
    tiler_token_file: Path | None = Field(
        None, description="Optional secrets file holding the Mapbox token (wins over the env var).")

    # --- negatives and splits (docs/architecture.md#data-honesty) -----------------------------------
    tiler_negatives_per_fire: int = Field(1, ge=0, le=20, description="Fire-free places per new fire.")
    tiler_negative_min_km: float = Field(10.0, gt=0, description="Nearest a negative may be to its fire.")
    tiler_negative_max_km: float = Field(50.0, gt=0, description="Farthest a negative may be from its fire.")
    tiler_negative_exclusion_km: float = Field(
        10.0, ge=0, description="A negative closer than this to any fire seen so far is rejected.")
    tiler_negative_match_cover: bool = Field(
        True, description="Match each negative to its fire's land cover, read from a small low-zoom "
        "context image of both places (water, forest, open, bare, built shares); false: region only.")
    tiler_negative_cover_tolerance: float = Field(
        0.35, ge=0, le=1, description="Largest land-cover difference (total variation distance of the "
        "class shares, 0-1) between a negative's context image and its fire's.")
    tiler_negative_max_water: float = Field(
        0.25, ge=0, le=1, description="A candidate negative whose tile footprint is more water than this "
        "share is rejected.")
    tiler_negative_cover_tries: int = Field(
        6, ge=1, le=50, description="Candidate places judged per negative (one context image each); when "
        "none matches, the best-matching land candidate is kept (warning, metric).")
    tiler_context_zoom: int = Field(12, ge=0, le=22, description="Zoom of the land-cover context images.")
    tiler_context_size_px: int = Field(
        128, ge=32, le=1280, description="Width and height of a candidate negative's land-cover context image "
        "(pixels).")
    tiler_fire_context_size_px: int = Field(
        256, ge=32, le=1280, description="Width and height of the fire's context image: wider than a "
        "candidate's (same zoom, same scale) so the ground around a fresh scar and plume is seen.")
    tiler_split_cell_deg: float = Field(
        1.5, gt=0, description="Side of the grid cell (degrees) whose hash assigns a tile's split.")
    tiler_split_val: float = Field(0.15, ge=0, le=1, description="Share of cells in the val split.")
    tiler_split_test: float = Field(0.15, ge=0, le=1, description="Share of cells in the test split.")
    # The split settings are pinned in <state_dir>/tiler/split.json on first start (services/tiler/pin_split.py).

    # --- HTTP behaviour ------------------------------------------------------------------------
    tiler_max_in_flight: int = Field(16, ge=1, le=32, description="Mapbox requests in flight at most.")
    tiler_mapbox_requests_per_minute: float = Field(
        1250.0, ge=0,
        description="Mapbox requests a minute for all tiler replicas together (one budget in the "
                    "coordination database; Mapbox's default Static Images limit is 1,250); 0 = no budget.")
    tiler_mapbox_burst: int = Field(
        50, ge=1, description="Requests the shared Mapbox budget lets through at once after a quiet spell.")
    tiler_request_timeout_s: float = Field(20.0, gt=0, description="Timeout of one Mapbox request.")
    tiler_retry_attempts: int = Field(4, ge=1, description="Tries of one request on 5xx/timeouts.")
    tiler_retry_backoff_s: float = Field(0.5, gt=0, description="First backoff between those tries.")
    tiler_retry_backoff_max_s: float = Field(30.0, gt=0, description="Largest backoff between tries.")
    tiler_rate_limit_max_wait_s: float = Field(
        300.0, gt=0, description="Longest single wait honoured from Retry-After/X-Rate-Limit-Reset.")
    tiler_image_attempts: int = Field(
        3, ge=1, description="Fetches of one tile whose image is invalid (truncated, error body...).")
    tiler_outage_max_wait_s: float = Field(
        6 * 3600.0, gt=0, description="How long a fire waits for Mapbox to come back (outage or bad "
        "token) before its message fails; it is not committed meanwhile.")
    tiler_outage_backoff_max_s: float = Field(
        60.0, gt=0, description="Largest pause between checks while Mapbox is down.")
    tiler_auth_recheck_s: float = Field(
        5.0, gt=0, description="While the token is rejected: how often to re-read it for a change.")
    tiler_auth_probe_s: float = Field(
        600.0, gt=0, description="While the token is rejected and unchanged: one probe request this often.")
    tiler_blank_std: float = Field(
        1.0, ge=0, description="A tile whose grey-level standard deviation is below this is blank.")
    tiler_group_id: str = Field("tiler", description="Consumer group of the tiler.")
    tiler_batch_size: int = Field(
        16, ge=1, le=256, description="New fires tiled concurrently. A consumer batch (up to "
        "EMBERWATCH_KAFKA_BATCH_MAX_RECORDS fires) is committed when all are done or dead-lettered; "
        "1 = one fire at a time with the shared consumer.")
    tiler_orphan_collect_interval_s: float = Field(
        3600.0, ge=0, description="How often to delete tiles stored but never announced (older than "
        "EMBERWATCH_TILER_ORPHAN_GRACE_S) from the tile store; 0 = never.")
    tiler_orphan_grace_s: float = Field(
        86400.0, gt=0, description="A tile never announced is kept this long after it was stored.")

    # --- Sentinel-2 (STAC), beside Mapbox: services/tiler/sentinel2_line.py -------------------------
    tiler_sentinel2: bool = Field(
        False, description="Also make each new fire's Sentinel-2 pair: the post-fire scene (SWIR and true colour, "
        "wildfire) and the same place before the start (nowildfire, the control). Off: Mapbox only.")
    tiler_sentinel2_stac_url: str = Field(
        "https://earth-search.aws.element84.com/v1", description="STAC API searched for Sentinel-2 L2A scenes "
        "(Earth Search v1; the local STAC simulator in the demo).")
    tiler_sentinel2_planetary_computer: bool = Field(
        False, description="Search Microsoft Planetary Computer (its URL and collection) and sign its asset hrefs; "
        "EMBERWATCH_TILER_SENTINEL2_STAC_URL is then ignored.")
    tiler_sentinel2_asset_hosts: str = Field(
        "", description="Further hosts (comma-separated; .example.net: every subdomain) a STAC item's COGs may be "
        "read from, besides the catalogue's own host, Earth Search's bucket and Planetary Computer's blob storage.")
    tiler_sentinel2_lookback_days: float = Field(
        60.0, gt=0, le=365, description="How far before a fire's start its pre-fire control may be.")
    tiler_sentinel2_give_up_days: float = Field(
        20.0, gt=0, le=365, description="A fire no clear acquisition shows this long after its start is given up.")
    tiler_sentinel2_retry_hours: float = Field(
        12.0, gt=0, description="A fire without a clear scene yet is searched again this much later.")
    tiler_sentinel2_max_cloud_fraction: float = Field(
        0.2, ge=0, le=1, description="Largest cloud, shadow and cirrus share (SCL) of the fire's box in a usable "
        "scene.")
    tiler_sentinel2_max_concurrent_fires: int = Field(
        2, ge=1, le=32, description="Fires whose Sentinel-2 pair is made at once (each in a worker thread).")
    tiler_sentinel2_requests_per_minute: float = Field(
        120.0, ge=0, description="STAC searches a minute for all tiler replicas together (one budget in the "
        "coordination database); 0 = no budget.")
    tiler_sentinel2_burst: int = Field(
        10, ge=1, description="STAC searches the shared budget lets through at once after a quiet spell.")
    tiler_sentinel2_check_interval_s: float = Field(
        60.0, gt=0, description="How often the tiler looks for fires whose Sentinel-2 search is due again.")
    tiler_sentinel2_outage_backoff_max_s: float = Field(
        900.0, gt=0, description="Largest pause before a fire is tried again after a STAC or COG outage "
        "(a 429's Retry-After is honoured up to this).")
    tiler_sentinel2_clock: Literal["wall", "feed"] = Field(
        "wall", description="What 'now' is for acquisitions and give-up: wall = this host's clock; feed = the "
        "latest snapshot time of the fire feed (the demo's simulated season).")

    @property
    def tiler_state(self) -> Path:
        return self.state_dir / "tiler"

    @property
    def provider(self) -> str:
        return f"mapbox-{self.tiler_mode}"
