"""Metrics of a head on a split and the confusion-matrix plot (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emberwatch.ml import CLASSES


def confusion(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """2×2 counts: rows = true class, columns = predicted class (index 1 = wildfire)."""
    m = np.zeros((2, 2), dtype=np.int64)
    for t, p in zip(y_true, y_pred, strict=True):
        m[int(t), int(p)] += 1
    return m


def binary_auc(y_true: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC by the rank-sum formula (ties averaged); NaN when one class is missing."""
    from scipy.stats import rankdata

    pos = y_true == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def expected_calibration_error(y_true: np.ndarray, probs: np.ndarray, bins: int = 10) -> float:
    """ECE: the mean gap between confidence and accuracy over equal-width confidence bins,
    weighted by each bin's share of the samples (Guo et al., 2017)."""
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == y_true).astype(np.float64)
    edges = np.linspace(0.5, 1.0, bins + 1)
    idx = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        sel = idx == b
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(ece)


def split_metrics(y_true: np.ndarray, probs: np.ndarray, prefix: str) -> dict[str, float]:
    """accuracy, precision/recall/F1 of the wildfire class, AUC and log loss on one split."""
    if len(y_true) == 0:
        return {}
    y_pred = probs.argmax(axis=1)
    m = confusion(y_true, y_pred)
    tp, fp, fn = m[1, 1], m[0, 1], m[1, 0]
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    eps = 1e-7
    loss = -np.mean(np.log(np.clip(probs[np.arange(len(y_true)), y_true], eps, 1.0)))
    out = {
        f"{prefix}_accuracy": float((y_pred == y_true).mean()),
        f"{prefix}_precision": float(precision),
        f"{prefix}_recall": float(recall),
        f"{prefix}_f1": float(f1),
        f"{prefix}_loss": float(loss),
        f"{prefix}_n": float(len(y_true)),
    }
    out[f"{prefix}_ece"] = expected_calibration_error(y_true, probs)
    auc = binary_auc(y_true, probs[:, 1])
    if not np.isnan(auc):
        out[f"{prefix}_auc"] = auc
    return out


def plot_confusion(matrices: dict[str, np.ndarray], path: Path) -> Path:
    """One panel per split, counts written in the cells."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(matrices), figsize=(4.2 * len(matrices), 4), squeeze=False)
    for ax, (name, m) in zip(axes[0], matrices.items(), strict=True):
        ax.imshow(m, cmap="Oranges")
        ax.set_title(f"{name} (n={int(m.sum())})")
        ax.set_xticks([0, 1], labels=list(CLASSES))
        ax.set_yticks([0, 1], labels=list(CLASSES))
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        for i in range(2):
            for j in range(2):
                ax.text(j, i, str(int(m[i, j])), ha="center", va="center", fontsize=14)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def plot_training_curves(history: dict[str, list[float]], path: Path) -> Path:
    """Loss and accuracy per epoch, training beside validation (Keras' history keys: loss,
    val_loss, accuracy, val_accuracy; a fine-tuning's as finetune_*). One panel per quantity."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [q for q in ("loss", "accuracy") if any(k.endswith(q) for k in history)]
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(5 * max(1, len(panels)), 3.6), squeeze=False)
    for ax, quantity in zip(axes[0], panels, strict=False):
        for key in sorted(k for k in history if k == quantity or k.endswith(f"_{quantity}")):
            values = history[key]
            ax.plot(range(1, len(values) + 1), values, marker="o", markersize=3, label=key)
        ax.set_title(quantity)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
