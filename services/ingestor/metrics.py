"""The ingestor's Prometheus metrics (``emberwatch_ingestor_*``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

POLLS = Counter(
    "emberwatch_ingestor_polls_total",
    "Polls of a feed by outcome (ok, not_modified, unchanged, unavailable, http_error, too_large, malformed, "
    "suspect).", ["source", "outcome"])
ROWS = Counter(
    "emberwatch_ingestor_rows_total",
    "Data rows parsed, by outcome (accepted, duplicate, rejected).", ["source", "outcome"])
ROWS_REJECTED = Counter(
    "emberwatch_ingestor_rows_rejected_total",
    "Rows the parser could not use, by reason.", ["source", "reason"])
ROW_WARNINGS = Counter(
    "emberwatch_ingestor_row_warnings_total",
    "Rows kept with a field unset (e.g. an unparseable start date) or a text cleaned or cut "
    "(text_cleaned, text_truncated), by kind.", ["source", "kind"])
FIRES = Gauge(
    "emberwatch_ingestor_fires", "Fires tracked now, by stage of control (OC, BH, UC, other, none).",
    ["stage"])
EVENTS = Counter(
    "emberwatch_ingestor_events_total", "fires.observed events published, by change.", ["change"])
ALERTS = Counter(
    "emberwatch_ingestor_alerts_total", "pipeline alerts published, by source and alert.",
    ["source", "alert"])
SNAPSHOT_TIME = Gauge(
    "emberwatch_ingestor_snapshot_timestamp_seconds",
    "Time (feed data time) of the newest good snapshot of a feed.", ["source"])
SNAPSHOT_AGE = Gauge(
    "emberwatch_ingestor_snapshot_age_seconds",
    "Seconds since the newest good snapshot of a feed was fetched.", ["source"])
POLL_SECONDS = Histogram(
    "emberwatch_ingestor_poll_seconds", "Duration of one poll cycle (fetch, parse, diff, publish).",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300))


def stage_label(stage: str | None) -> str:
    if stage is None:
        return "none"
    return stage if stage in ("OC", "BH", "UC", "EX") else "other"
