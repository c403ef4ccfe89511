"""The tiler's own value types (events live in emberwatch.contracts)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from emberwatch.contracts.envelope import Envelope

Publish = Callable[[Envelope], Awaitable[None]]  # sends one event to its topic


@dataclass(frozen=True)
class TileJob:
    """One tile to make for a fire: its place, label and split."""

    slot: str  # "fire" or "neg-<i>": one place per fire and slot, forever
    label: str
    lat: float
    lon: float
    split: str
