"""Everything the gatekeeper remembers between events, as one value.

``GatekeeperState`` is frozen; ``machine.step`` returns a new one. The mappings inside are never
changed in place (each change builds a new mapping), so an old state stays what it was. ``to_dict``
and ``from_dict`` give its JSON form, which the state store writes with ``SCHEMA_VERSION``.

- ``shadow``: the challenger in shadow, if any, with its pairs;
- ``decisions``: every decision on a candidate by ``model:version`` (a redelivered candidate gets
  the same event again);
- ``validation_failures``: the current streak of candidates failing infra validation;
- ``drift_used``: what each class's drift budget has used up over the promotions so far;
- ``champions``: the champion history, oldest first (a rollback goes to the one before the last);
- ``relabels`` and ``human_labels``: labels corrected after the fact (see ``label_for``);
- ``answers`` and ``seen_commands``: the answer to each recent operator command, and the id of
  every verified command until its deadline (none is carried out twice).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from types import MappingProxyType
from typing import Any

from services.gatekeeper.core.shadow import Pair, Shadow

SCHEMA_VERSION = 1
KEEP_ANSWERS = 1000


def _frozen(m: Mapping | None = None) -> Mapping:
    return MappingProxyType(dict(m or {}))


@dataclass(frozen=True)
class Failure:
    version: str
    reason: str


@dataclass(frozen=True)
class GatekeeperState:
    shadow: Shadow | None = None
    decisions: Mapping[str, dict] = field(default_factory=_frozen)
    validation_failures: tuple[Failure, ...] = ()
    drift_used: Mapping[str, float] = field(default_factory=_frozen)
    champions: tuple[str, ...] = ()
    relabels: Mapping[str, dict] = field(default_factory=_frozen)
    human_labels: Mapping[str, dict] = field(default_factory=_frozen)
    answers: Mapping[str, dict] = field(default_factory=_frozen)
    seen_commands: Mapping[str, str] = field(default_factory=_frozen)

    def __post_init__(self) -> None:
        for name in ("decisions", "drift_used", "relabels", "human_labels", "answers", "seen_commands"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))
        object.__setattr__(self, "validation_failures", tuple(self.validation_failures))
        object.__setattr__(self, "champions", tuple(str(v) for v in self.champions))

    def with_(self, **changes: Any) -> GatekeeperState:
        return replace(self, **changes)

    # --- labels corrected after the fact -------------------------------------------------------
    # A retired tile (a later fire lies near a fire-free one) is never scored; a relabelled one counts
    # with its new label. A relabel wins over a retire; otherwise the first event for a tile stays.
    # A person's label (labels.feedback.v1) wins over both; the latest one on a tile holds.
    def retired(self, tile_id: str) -> bool:
        """Left out of scoring: retired by a later fire, and no person has labelled it."""
        c = self.relabels.get(tile_id)
        return c is not None and c["action"] == "retire" and tile_id not in self.human_labels

    def label_for(self, tile_id: str, label: str) -> str:
        """The tile's label: a person's first, else after any relabel."""
        if (human := self.human_labels.get(tile_id)) is not None:
            return human["label"]
        c = self.relabels.get(tile_id)
        return c["label"] if c is not None and c["action"] == "relabel" else label

    # --- JSON form -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        shadow = None
        if self.shadow is not None:
            shadow = asdict(self.shadow)
            shadow["pairs"] = [asdict(p) for p in self.shadow.pairs]
            shadow["warnings"] = list(self.shadow.warnings)
        return {
            "shadow": shadow, "decisions": dict(self.decisions),
            "validation_failures": [asdict(f) for f in self.validation_failures],
            "drift_used": dict(self.drift_used), "champions": list(self.champions),
            "relabels": dict(self.relabels), "human_labels": dict(self.human_labels),
            "answers": dict(self.answers), "seen_commands": dict(self.seen_commands),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GatekeeperState:
        return cls(
            shadow=shadow_from_dict(data.get("shadow")), decisions=data.get("decisions") or {},
            validation_failures=tuple(Failure(**f) for f in data.get("validation_failures") or []),
            drift_used=data.get("drift_used") or {}, champions=tuple(data.get("champions") or ()),
            relabels=data.get("relabels") or {}, human_labels=data.get("human_labels") or {},
            answers=data.get("answers") or {}, seen_commands=data.get("seen_commands") or {},
        )


def shadow_from_dict(data: Mapping[str, Any] | None) -> Shadow | None:
    if not data:
        return None
    fields = dict(data)
    pairs = tuple(Pair(**p) for p in fields.pop("pairs", []))
    return Shadow(pairs=pairs, **fields)
