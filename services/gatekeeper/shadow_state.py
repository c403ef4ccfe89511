"""The challenger in shadow, as kept in the gatekeeper's state store (for tools and tests that set
one up or look at it)."""

from __future__ import annotations

from services.gatekeeper.core.shadow import Pair, Shadow
from services.gatekeeper.state_store import StateStore

__all__ = ["Pair", "Shadow", "ShadowStore"]


class ShadowStore:
    def __init__(self, store: StateStore):
        self.store = store

    def load(self) -> Shadow | None:
        return self.store.load().shadow

    def save(self, shadow: Shadow | None) -> None:
        self.store.save(self.store.load().with_(shadow=shadow))

    def clear(self) -> None:
        self.save(None)
