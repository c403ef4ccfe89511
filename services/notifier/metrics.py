"""The notifier's Prometheus metrics (``emberwatch_notifier_*``)."""

from prometheus_client import Counter, Histogram

POSTS = Counter(
    "emberwatch_notifier_posts_total",
    "Webhook posts by kind (candidate, promoted, rejected, rolled_back, alert, digest) and outcome "
    "(posted, rejected, failed).",
    ["kind", "outcome"],
)
RETRIES = Counter(
    "emberwatch_notifier_retries_total",
    "Webhook requests repeated, by reason (rate_limited, server_error, network).",
    ["reason"],
)
RATE_LIMIT_WAITS = Counter(
    "emberwatch_notifier_rate_limit_waits_total",
    "Waits for Discord's rate limit, by cause (429, or remaining=0 before sending).",
    ["cause"],
)
RATE_LIMIT_WAIT_SECONDS = Histogram(
    "emberwatch_notifier_rate_limit_wait_seconds",
    "Seconds waited for Discord's rate limit.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120),
)
DIGEST_SIZE = Histogram(
    "emberwatch_notifier_digest_events",
    "Events summarised in one digest message.",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
)
DUPLICATES = Counter(
    "emberwatch_notifier_duplicates_suppressed_total",
    "Events not posted again because they were already posted (or queued for a digest).",
    ["kind"],
)
UNCERTAIN = Counter(
    "emberwatch_notifier_uncertain_reposts_total",
    "Events posted again after a crash between Discord's answer and the delivery record.",
)
SHORTENED = Counter(
    "emberwatch_notifier_shortened_total",
    "Payloads that had to be shortened to fit Discord's limits.",
)
