"""The ingestor's own settings (``EMBERWATCH_INGESTOR_*``), beside the common ones.

The feed URLs are common settings: ``EMBERWATCH_CWFIS_CSV_URL`` and ``EMBERWATCH_CWFIS_WFS_URL``
(an empty string switches that feed off).
"""

from __future__ import annotations

from pydantic import Field

from emberwatch.common.config import Settings

SERVICE = "ingestor"  # the service's name: logs, metrics, client ids, event producer

class IngestorSettings(Settings):
    ingestor_poll_interval_s: float = Field(
        600.0, description="Seconds between polls of the CWFIS feeds (they change about hourly).")
    ingestor_wfs_format: str = Field(
        "application/json", description="WFS outputFormat: application/json (GeoJSON) or csv.")
    ingestor_wfs_layer: str = Field(
        "public:cwfif_national_activefires", description="WFS typeNames of the national layer.")
    ingestor_wfs_cql_filter: str = Field(
        "record_start<=now() AND record_end>now()",
        description="CQL_FILTER sent to the WFS (current record versions only); empty for none.")
    ingestor_connect_timeout_s: float = Field(10.0, description="HTTP connect timeout.")
    ingestor_read_timeout_s: float = Field(30.0, description="HTTP read timeout (between bytes).")
    ingestor_total_timeout_s: float = Field(
        60.0, description="Deadline for one HTTP attempt, body included.")
    ingestor_retry_attempts: int = Field(
        4, description="Attempts per feed per poll on timeouts, transport errors, 5xx and 429.")
    ingestor_retry_backoff_s: float = Field(
        1.0, description="Base of the exponential backoff (full jitter) between attempts.")
    ingestor_retry_backoff_max_s: float = Field(
        30.0, description="Longest wait between attempts (a Retry-After is honoured up to it).")
    ingestor_daydelta: int = Field(
        0, description="Only start tracking fires that started within this many days (0 = all; "
                       "fires without a start date are kept).")
    ingestor_agencies: str = Field(
        "", description="Only these agency codes, comma-separated (e.g. bc,ab); empty = all.")
    ingestor_bbox: str = Field(
        "", description="Only fires inside min_lon,min_lat,max_lon,max_lat; empty = everywhere.")
    ingestor_max_reject_fraction: float = Field(
        0.5, description="A snapshot with more rejected rows than this fraction is refused.")
    ingestor_max_drop_fraction: float = Field(
        0.5, description="A snapshot with this fraction fewer fires than the last good one is "
                         "refused as suspect (truncated at the source); 1 disables the check.")
    ingestor_drop_check_min_fires: int = Field(
        20, description="The drop check applies only when the last good snapshot had this many.")
    ingestor_alert_repeat_s: float = Field(
        3600.0, description="A feed that keeps failing the same way is re-alerted this often.")
    ingestor_max_feed_bytes: int = Field(
        50 * 1024 * 1024, gt=0,
        description="Largest feed body accepted, in bytes after decompression (checked while it streams); "
                    "a larger one is refused unparsed, the last good snapshot kept and an alert raised.")
    ingestor_max_text_chars: int = Field(
        200, gt=0,
        description="Longest text field of a feed row, in characters: a longer agency, fire name or id "
                    "refuses the row (reason text_too_long); a longer stage or response type is cut "
                    "(marked …).")
    ingestor_publish_concurrency: int = Field(
        256, description="Events in flight at once while publishing one poll's changes.")

