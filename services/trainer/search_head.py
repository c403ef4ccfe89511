"""A small hyperparameter search over the head (units × learning rate), early stopping on val_loss.

The best trial's logits are then divided by a temperature fitted on the validation split (one
scalar, by maximum likelihood): it calibrates the probabilities without changing any decision.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from emberwatch.ml.head import apply_temperature, build_head, logits_model
from services.trainer.models import HeadResult

log = logging.getLogger(__name__)
TEMPERATURE_RANGE = (0.05, 20.0)


def class_weights(y: np.ndarray) -> dict[int, float]:
    """Balanced weights so a skewed split does not teach the head to always say the majority."""
    counts = np.bincount(y, minlength=2).astype(float)
    total = counts.sum()
    return {i: (total / (2 * c) if c else 1.0) for i, c in enumerate(counts)}


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature T minimising the negative log-likelihood of softmax(logits / T) on ``y``."""
    from scipy.optimize import minimize_scalar

    if len(y) < 2 or len(np.unique(y)) < 2:
        return 1.0
    z = np.asarray(logits, dtype=np.float64)

    def nll(log_t: float) -> float:
        s = z / math.exp(log_t)
        s = s - s.max(axis=1, keepdims=True)
        logp = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
        return float(-logp[np.arange(len(y)), y].mean())

    lo, hi = (math.log(v) for v in TEMPERATURE_RANGE)
    res = minimize_scalar(nll, bounds=(lo, hi), method="bounded", options={"xatol": 1e-3})
    return float(math.exp(res.x))


def search_head(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    units_grid: list[int],
    learning_rates: list[float],
    dropout: float,
    epochs: int,
    patience: int,
    batch_size: int,
    seed: int,
    calibrate: bool = True,
    sample_weight: np.ndarray | None = None,
) -> HeadResult:
    """Train one head per (units, learning rate); keep the one with the lowest best val_loss.

    ``sample_weight`` (one per training tile, e.g. a down-weighted not-visible fire tile) multiplies the
    balanced class weights."""
    import keras

    weights = class_weights(y_train)
    weighting = {"class_weight": weights} if sample_weight is None else {
        "sample_weight": np.asarray([weights[int(c)] for c in y_train]) * np.asarray(sample_weight, np.float64)}
    best: HeadResult | None = None
    best_loss = math.inf
    trials = []
    for units in units_grid:
        for lr in learning_rates:
            model = build_head(x_train.shape[1], units, dropout, x_train, seed=seed)
            model.compile(
                optimizer=keras.optimizers.Adam(learning_rate=lr),
                loss="sparse_categorical_crossentropy",
                metrics=["accuracy"],
            )
            stop = keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=patience, restore_best_weights=True
            )
            fit = model.fit(
                x_train, y_train, validation_data=(x_val, y_val), epochs=epochs,
                batch_size=batch_size, callbacks=[stop], verbose=0, shuffle=True, **weighting,
            )
            history = {k: [float(v) for v in vals] for k, vals in fit.history.items()}
            val_loss = min(history["val_loss"])
            trial = {"units": units, "learning_rate": lr, "best_val_loss": val_loss,
                     "epochs": len(history["val_loss"]),
                     "best_val_accuracy": float(history["val_accuracy"][int(np.argmin(history["val_loss"]))]),
                     "history": history}
            trials.append(trial)
            log.info("head trial", extra={k: v for k, v in trial.items() if k != "history"})
            if val_loss < best_loss:
                best_loss = val_loss
                best = HeadResult(model=model, units=units, learning_rate=lr,
                                  epochs_run=len(history["val_loss"]), history=history, trials=trials)
    assert best is not None, "empty search grid"
    best.trials = trials
    if calibrate and len(x_val):
        logits = logits_model(best.model).predict(x_val, verbose=0)
        best.temperature = fit_temperature(logits, y_val)
        apply_temperature(best.model, best.temperature)
        log.info("head calibrated", extra={"temperature": best.temperature})
    return best
