"""The leakage check of every training (docs/architecture.md#data-honesty): shortcut baselines beside the CNN.

A CNN can score well on wildfire imagery by learning *where* the tiles come from (on the public
Kaggle wildfire set, "no fire if near a city" scores 95 %) or a colour cue rather than fire. So on
the very splits the CNN was trained and scored on, two shortcut classifiers are trained and scored
too:

* **location only** — latitude and longitude → label (k-nearest neighbours and gradient-boosted
  trees; the better on the validation split is scored on the evaluation split); skipped when a
  tile has no recorded location;
* **hand statistics** — the 14 global image statistics of ``emberwatch.ml.image_statistics``
  (logistic regression and gradient-boosted trees, chosen the same way).

When either baseline's accuracy comes within ``margin`` of the CNN's (or beats it), the candidate
carries a warning: the notifier posts it and the gatekeeper shows it with its decision. The check
does not block a candidate: the gate decides on paired evidence, and a person reads the warning.

On a Sentinel-2 line the tiles carry physics (dNBR, hot pixels), and the dNBR rule of
``services/trainer/physics_baseline.py`` is scored on the same evaluation tiles: nothing to fit, and
the warning also says when the CNN does not beat it.

Pure: arrays in, a :class:`LeakageResult` out (scikit-learn, seeded).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from services.trainer.physics_baseline import PhysicsRuleResult, TileIndices, score_physics_rule

MIN_PER_CLASS = 2  # fewer training examples of a class: the baseline is not fitted


@dataclass(frozen=True)
class SplitData:
    """One split's inputs for the baselines: (lat, lon) per tile, hand statistics, labels (1 = wildfire)."""

    location: np.ndarray  # (n, 2)
    statistics: np.ndarray  # (n, k)
    labels: np.ndarray  # (n,)

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class LeakageResult:
    split: str
    n: int
    cnn_accuracy: float
    location_accuracy: float | None
    statistics_accuracy: float | None
    location_model: str | None
    statistics_model: str | None
    margin: float
    warning: str | None
    physics: PhysicsRuleResult | None = None  # the dNBR rule, where the tiles carry indices

    def metrics(self) -> dict[str, float]:
        out = {"leakage_cnn_accuracy": self.cnn_accuracy, "leakage_margin": self.margin,
               "leakage_warning": 1.0 if self.warning else 0.0}
        if self.location_accuracy is not None:
            out["leakage_location_accuracy"] = self.location_accuracy
        if self.statistics_accuracy is not None:
            out["leakage_statistics_accuracy"] = self.statistics_accuracy
        if self.physics is not None:
            out.update({f"leakage_{k}": v for k, v in self.physics.metrics().items()})
        return out

    def contract(self) -> dict:
        """The ``LeakageCheck`` fields of the candidate event."""
        out = {"split": self.split, "n": self.n, "cnn_accuracy": round(self.cnn_accuracy, 4),
               "location_accuracy": _round(self.location_accuracy),
               "statistics_accuracy": _round(self.statistics_accuracy), "margin": self.margin,
               "warning": self.warning}
        if self.physics is not None:
            out.update(physics_rule_accuracy=_round(self.physics.accuracy),
                       physics_rule_recall=_round(self.physics.recall),
                       physics_rule_specificity=_round(self.physics.specificity),
                       physics_rule_tiles_with_indices=self.physics.with_indices)
        return out


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def _candidates(kind: str, n_train: int, seed: int) -> dict[str, object]:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    trees = HistGradientBoostingClassifier(max_iter=100, learning_rate=0.1,
                                           min_samples_leaf=max(2, min(20, n_train // 10)), random_state=seed)
    if kind == "location":
        k = max(1, min(7, n_train // 4))
        return {f"knn{k}": make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=k)), "trees": trees}
    return {"logistic": make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)), "trees": trees}


def _baseline(kind: str, x_train, y_train, x_val, y_val, x_eval, y_eval, seed: int) -> tuple[float | None, str | None]:
    """The eval accuracy of the kind's best model on val (ties: the first); None if it cannot be fitted."""
    if min(int((y_train == 0).sum()), int((y_train == 1).sum())) < MIN_PER_CLASS or len(y_eval) == 0:
        return None, None
    best: tuple[float, str, object] | None = None
    for name, model in _candidates(kind, len(y_train), seed).items():
        model.fit(x_train, y_train)
        score = float((model.predict(x_val) == y_val).mean()) if len(y_val) else 0.0
        if best is None or score > best[0]:
            best = (score, name, model)
    assert best is not None
    _, name, model = best
    return float((model.predict(x_eval) == y_eval).mean()), name


def check_leakage(train: SplitData, val: SplitData, evaluate: SplitData, cnn_predictions: np.ndarray, *,
                  split: str, margin: float, seed: int = 0,
                  physics: list[TileIndices] | None = None) -> LeakageResult:
    """Both baselines fitted on ``train`` (model chosen on ``val``), scored on ``evaluate`` beside the
    CNN's predictions (0/1 per tile of ``evaluate``); the dNBR rule too when ``physics`` gives the
    indices of each tile of ``evaluate`` and one of them carries any."""
    y = np.asarray(evaluate.labels, dtype=np.int64)
    pred = np.asarray(cnn_predictions, dtype=np.int64)
    if pred.shape != y.shape:
        raise ValueError(f"{len(pred)} CNN predictions for {len(y)} tiles")
    cnn = float((pred == y).mean()) if len(y) else 0.0
    loc, loc_model = None, None
    if not any(np.isnan(np.asarray(d.location, dtype=np.float64)).any() for d in (train, val, evaluate)):
        loc, loc_model = _baseline("location", train.location, train.labels, val.location, val.labels,
                                   evaluate.location, y, seed)
    stats, stats_model = _baseline("statistics", train.statistics, train.labels, val.statistics, val.labels,
                                   evaluate.statistics, y, seed)
    close = []
    if loc is not None and loc >= cnn - margin:
        close.append(f"a location-only classifier (latitude, longitude) scores {loc:.1%}")
    if stats is not None and stats >= cnn - margin:
        close.append(f"a classifier on simple colour/brightness statistics scores {stats:.1%}")
    warnings = []
    if close:
        best = max(a for a in (loc, stats) if a is not None)
        relation = "at or above" if best >= cnn else f"within {margin:.0%} of"
        warnings.append(f"possible shortcut: {' and '.join(close)} on the {split} split (n={len(y)}), {relation} "
                        f"the CNN's {cnn:.1%}; the model may have learned where tiles come from "
                        f"or a colour cue rather than fire")
    rule = score_physics_rule(physics, y, pred, split=split) if physics is not None else None
    if rule is not None and rule.warning:
        warnings.append(rule.warning)
    return LeakageResult(split=split, n=len(y), cnn_accuracy=cnn, location_accuracy=loc, statistics_accuracy=stats,
                         location_model=loc_model, statistics_model=stats_model, margin=margin,
                         warning="; ".join(warnings) or None, physics=rule)
