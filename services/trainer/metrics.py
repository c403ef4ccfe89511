"""The trainer's Prometheus metrics (``emberwatch_trainer_*``)."""

from prometheus_client import Counter, Gauge, Histogram

TILES_RECORDED = Counter(
    "emberwatch_trainer_tiles_recorded_total", "Tiles added to the durable tile index (new ones only)."
)
KNOWN_TILES = Gauge("emberwatch_trainer_known_tiles", "Tiles in the durable tile index.")
TRAININGS = Counter(
    "emberwatch_trainer_trainings_total", "Training attempts by outcome (trained, reused, skipped, failed).",
    ["outcome"],
)
TRAINING_SECONDS = Histogram(
    "emberwatch_trainer_training_seconds", "Time from the start of a training to its registered candidate.",
    buckets=(1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)
EMBEDDINGS_COMPUTED = Counter(
    "emberwatch_trainer_embeddings_computed_total", "Backbone forward passes (tiles embedded)."
)
EMBEDDING_CACHE_HITS = Counter(
    "emberwatch_trainer_embedding_cache_hits_total", "Tiles whose embedding came from the cache."
)
UNREADABLE_TILES = Counter(
    "emberwatch_trainer_unreadable_tiles_total", "Tiles skipped because their image could not be read."
)
MLFLOW_RETRIES = Counter(
    "emberwatch_trainer_mlflow_retries_total", "MLflow publishing attempts that failed and were retried."
)
CANDIDATES = Counter("emberwatch_trainer_candidates_total", "ModelCandidate events published.")
LAST_VAL_ACCURACY = Gauge("emberwatch_trainer_last_val_accuracy", "Validation accuracy of the last candidate.")
TILES_RELABELLED = Counter(
    "emberwatch_trainer_tiles_relabelled_total",
    "Fire-free tiles retired or relabelled because a fire reported later lies near them.", ["action"],
)
HUMAN_LABELS = Counter(
    "emberwatch_trainer_human_labels_total",
    "A person's labels on tiles (labels.feedback.v1) recorded, by the label given.", ["label"],
)
LEAKAGE_WARNINGS = Counter(
    "emberwatch_trainer_leakage_warnings_total",
    "Trainings whose location-only or hand-statistics baseline came within the margin of the CNN.",
)
