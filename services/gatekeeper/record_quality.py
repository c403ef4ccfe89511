"""Model quality per version, fed whenever a model scores labelled tiles
(docs/architecture.md#monitoring).

- every scored labelled tile: the confusion outcome of the wildfire class and P(wildfire), by source
  (``test``: the candidate's held-out split; ``live``: tiles.ready.v1 tiles, which carry their label);
- drift: PSI of the version's most recent live P(wildfire) (a window of ``window`` scores, kept in
  memory, so a restart starts a fresh window) against its reference, the version's own scores on its
  test split when it was a candidate (stored as bin counts under ``<gatekeeper>/references/``);
- shadow: pairs by agreement, the agreement fraction, and when the challenger entered shadow.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Iterable, Sequence
from pathlib import Path

from emberwatch.common.atomic_files import atomic_write_text
from emberwatch.common.safe_paths import child_path
from services.gatekeeper.measure_drift import bin_counts, psi
from services.gatekeeper.metrics import (
    LIVE_WINDOW,
    PREDICTIONS,
    PSI,
    SHADOW_AGREEMENT,
    SHADOW_CLASS_PAIRS,
    SHADOW_PAIRS_TOTAL,
    SHADOW_STARTED,
    WILDFIRE_PROBABILITY,
)
from services.gatekeeper.core.shadow import THRESHOLD, Pair, Shadow

log = logging.getLogger(__name__)


def outcome(label: int, wildfire: float) -> str:
    """Confusion outcome of the wildfire class (label 1) for one tile at the decision threshold."""
    predicted = wildfire >= THRESHOLD
    if label == 1:
        return "tp" if predicted else "fn"
    return "fp" if predicted else "tn"


def agreement(champion_wildfire: float, challenger_wildfire: float) -> bool:
    return (champion_wildfire >= THRESHOLD) == (challenger_wildfire >= THRESHOLD)


class ModelQuality:
    def __init__(self, root: Path, model_name: str, *, window: int = 500, min_live: int = 200):
        self.references = root / "references"
        self.model = model_name
        self.window = window
        self.min_live = min_live
        self.live: dict[str, deque[float]] = {}
        self._references: dict[str, list[int] | None] = {}
        self._shadow: tuple[str, str] | None = None  # (challenger, champion) of the gauges set

    # --- reference distribution --------------------------------------------------------------
    def set_reference(self, version: str, wildfire: Iterable[float]) -> None:
        counts = bin_counts(wildfire)
        if sum(counts):
            atomic_write_text(child_path(self.references, f"{version}.json"), json.dumps({"bins": counts}))
            self._references[str(version)] = counts

    def reference(self, version: str) -> list[int] | None:
        version = str(version)
        if self._references.get(version) is None:
            path = child_path(self.references, f"{version}.json")
            self._references[version] = json.loads(path.read_text())["bins"] if path.is_file() else None
        return self._references[version]

    # --- scored labelled tiles ---------------------------------------------------------------
    def observe(self, version: str, labels: Sequence[int], wildfire: Sequence[float], source: str) -> None:
        version = str(version)
        for label, p in zip(labels, wildfire, strict=True):
            PREDICTIONS.labels(self.model, version, source, outcome(int(label), float(p))).inc()
            WILDFIRE_PROBABILITY.labels(self.model, version, source).observe(float(p))
        if source == "live":
            window = self.live.setdefault(version, deque(maxlen=self.window))
            window.extend(float(p) for p in wildfire)
            self._update_psi(version)

    def drift(self, version: str) -> float | None:
        """PSI of the live window against the reference, once both are there (else None)."""
        window = self.live.get(str(version))
        ref = self.reference(str(version))
        if ref is None or window is None or len(window) < self.min_live:
            return None
        return psi(ref, bin_counts(window))

    def _update_psi(self, version: str) -> None:
        LIVE_WINDOW.labels(self.model, version).set(len(self.live[version]))
        value = self.drift(version)
        if value is not None:
            PSI.labels(self.model, version).set(value)

    def retain(self, versions: Iterable[str | None]) -> None:
        """Forget the live window and PSI of versions that are no longer served."""
        keep = {str(v) for v in versions if v is not None}
        for version in [v for v in self.live if v not in keep]:
            del self.live[version]
            PSI.remove(self.model, version)
            LIVE_WINDOW.remove(self.model, version)

    # --- shadow ------------------------------------------------------------------------------
    def shadow_pairs(self, shadow: Shadow, new: Iterable[Pair]) -> None:
        """Count the new pairs (both versions' outcomes too) and refresh the agreement fractions."""
        new = list(new)
        labels = dict(model=self.model, version=shadow.candidate_version, champion=shadow.champion_version)
        for p in new:
            SHADOW_PAIRS_TOTAL.labels(**labels, source=p.source,
                                      agreement="agree" if agreement(p.champion_wildfire,
                                                                     p.challenger_wildfire)
                                      else "disagree").inc()
        for source in {p.source for p in new}:
            self.observe(shadow.champion_version, [p.label for p in new if p.source == source],
                         [p.champion_wildfire for p in new if p.source == source], source)
            self.observe(shadow.candidate_version, [p.label for p in new if p.source == source],
                         [p.challenger_wildfire for p in new if p.source == source], source)
        self.shadow_state(shadow)

    def shadow_state(self, shadow: Shadow) -> None:
        """The gauges of the shadow in progress (also after a restart, from the stored shadow)."""
        if self._shadow != (shadow.candidate_version, shadow.champion_version):
            self.shadow_ended()
            self._shadow = (shadow.candidate_version, shadow.champion_version)
        labels = dict(model=self.model, version=shadow.candidate_version, champion=shadow.champion_version)
        SHADOW_STARTED.labels(**labels).set(shadow.started_at or 0.0)
        wildfire = sum(p.label == 1 for p in shadow.pairs)
        SHADOW_CLASS_PAIRS.labels(**labels, label="wildfire").set(wildfire)
        SHADOW_CLASS_PAIRS.labels(**labels, label="nowildfire").set(len(shadow.pairs) - wildfire)
        for source in {p.source for p in shadow.pairs}:
            pairs = [p for p in shadow.pairs if p.source == source]
            agree = sum(agreement(p.champion_wildfire, p.challenger_wildfire) for p in pairs)
            SHADOW_AGREEMENT.labels(**labels, source=source).set(agree / len(pairs))

    def shadow_ended(self) -> None:
        """No shadow any more (decided, superseded, or promoted by hand in another process)."""
        if self._shadow is None:
            return
        challenger, champion = self._shadow
        SHADOW_STARTED.remove(self.model, challenger, champion)
        for label in ("wildfire", "nowildfire"):
            SHADOW_CLASS_PAIRS.remove(self.model, challenger, champion, label)
        for source in ("test", "live"):
            SHADOW_AGREEMENT.remove(self.model, challenger, champion, source)
        self._shadow = None
