"""The gatekeeper's Prometheus metrics: its own (``emberwatch_gatekeeper_*``) and the model-quality
figures per model version (``emberwatch_model_*``, labels ``model`` and ``version``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from services.gatekeeper.measure_drift import EDGES

# --- the gatekeeper's own work ---------------------------------------------------------------
DECISIONS = Counter("emberwatch_gatekeeper_decisions_total", "Decisions by kind.", ["decision"])
SHADOW_PAIRS = Gauge("emberwatch_gatekeeper_shadow_pairs", "Paired samples of the challenger in shadow, per model "
                     "line (the imagery product).", ["product"])
GATE_MINIMUM = Gauge("emberwatch_gatekeeper_gate_minimum_pairs",
                     "The gate's minimums before it looks: paired samples in all (label all) and per class "
                     "(wildfire, nowildfire).", ["label"])
SHADOW_TILES = Counter("emberwatch_gatekeeper_shadow_tiles_total",
                       "Live tiles scored by champion and challenger, by outcome.", ["outcome"])
HUMAN_LABELS = Counter("emberwatch_gatekeeper_human_labels_total",
                       "A person's labels on tiles (labels.feedback.v1) recorded, by the label given.", ["label"])
DETECTIONS = Counter("emberwatch_gatekeeper_detections_total",
                     "Live tiles the champion called a wildfire (detections.v1 events published).")
COMMANDS = Counter("emberwatch_gatekeeper_commands_total",
                   "Operator commands by kind and outcome (done, refused, failed).", ["command", "outcome"])
COMMAND_REFUSALS = Counter(
    "emberwatch_gatekeeper_command_refusals_total",
    "Operator commands refused, by reason: unsigned, unknown_issuer, bad_signature (forged or altered), "
    "impersonation (a key speaking for someone else), expired (past, missing or too far ahead), replayed, "
    "not_possible (verified, but it cannot be done).", ["reason"])
CHAMPION_TILES = Counter(
    "emberwatch_gatekeeper_champion_tiles_total",
    "Live tiles scored by the champion alone while no challenger is in shadow, by outcome "
    "(scored, replayed: already scored by this version, failed, no_champion, disabled).", ["outcome"])

FIRE_TO_PREDICTION = Histogram(
    "emberwatch_fire_to_prediction_seconds",
    "From the ingestor first seeing a fire to the champion's prediction on the fire's own tile "
    "(tiles scored as they arrive; live monitoring or shadow).",
    buckets=(1, 2, 5, 10, 15, 20, 30, 45, 60, 120, 300, 600, 1800, 3600))

# --- model quality per version ---------------------------------------------------------------
PREDICTIONS = Counter(
    "emberwatch_model_predictions_total",
    "Labelled tiles scored by a model version, by source (live, test) and confusion outcome of the "
    "wildfire class at P >= 0.5 (tp, fp, fn, tn).", ["model", "version", "source", "outcome"])
WILDFIRE_PROBABILITY = Histogram(
    "emberwatch_model_wildfire_probability",
    "P(wildfire) predicted by a model version, by source (live, test).", ["model", "version", "source"],
    buckets=EDGES[1:])
PSI = Gauge(
    "emberwatch_model_psi",
    "Population stability index of the version's live P(wildfire) (recent window) against its "
    "reference: its own scores on its test split when it was a candidate.", ["model", "version"])
LIVE_WINDOW = Gauge(
    "emberwatch_model_live_window_samples", "Live scores in the window the PSI is computed over.",
    ["model", "version"])
SHADOW_PAIRS_TOTAL = Counter(
    "emberwatch_model_shadow_pairs_total",
    "Tiles scored by both the challenger (version) and the champion, by source and agreement "
    "(agree: both predict the same class).", ["model", "version", "champion", "source", "agreement"])
SHADOW_AGREEMENT = Gauge(
    "emberwatch_model_shadow_agreement",
    "Fraction of the shadow's paired tiles where challenger (version) and champion predict the same "
    "class, by source.", ["model", "version", "champion", "source"])
SHADOW_CLASS_PAIRS = Gauge(
    "emberwatch_model_shadow_class_pairs",
    "The shadow's paired tiles now, by their label (wildfire, nowildfire; human labels and relabels "
    "applied), to set against emberwatch_gatekeeper_gate_minimum_pairs.", ["model", "version", "champion", "label"])
SHADOW_STARTED = Gauge(
    "emberwatch_model_shadow_started_timestamp_seconds",
    "Unix time the challenger (version) entered shadow; the series is gone once the shadow ends.",
    ["model", "version", "champion"])

SERVING_CHECK_FAILURES = Counter(
    "emberwatch_gatekeeper_serving_check_failures_total",
    "Checks that could not confirm or restore the served models in Triton (Triton down or failing).")

# the counters the core names in its ``Count`` effects
COUNTERS = {
    "decisions": DECISIONS, "shadow_tiles": SHADOW_TILES, "champion_tiles": CHAMPION_TILES,
    "detections": DETECTIONS, "human_labels": HUMAN_LABELS, "commands": COMMANDS,
    "command_refusals": COMMAND_REFUSALS,
}
