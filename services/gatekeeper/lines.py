"""The gatekeeper's model lines: one full gatekeeper per imagery product, and which line each event goes to.

Each enabled product (``EMBERWATCH_MODEL_LINES``) has a ``Gatekeeper`` of its own: its core state and
state file, its registered model, its Triton models. A candidate is only ever compared with the
champion of its own product, because only its own line ever sees it.

- a candidate goes to the line of its ``product``; one of a product without an enabled line is
  refused (``NoLine``: the handler sends it to the DLQ with the reason);
- a live tile goes to the line of its ``product``; the tiles of a product without a line are not
  scored (nothing serves them);
- an operator's command goes to the line whose registered model it names; a name no line registers
  goes to the first line, which refuses it as today (its answer says which model it serves);
- relabels and a person's labels are about a tile, not a product: every line takes them, and every
  line hears the clock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from emberwatch.contracts.events import LabelFeedback, ModelCandidate, ModelCommand, TileReady, TileRelabelled
from emberwatch.contracts.products import MAPBOX, product_of_model
from services.gatekeeper.gatekeeper import Gatekeeper
from services.gatekeeper.settings import GatekeeperSettings

log = logging.getLogger(__name__)


class NoLine(ValueError):
    """A candidate of a product no enabled model line learns from."""


class GatekeeperLines:
    """The lines side by side, with the entries of one ``Gatekeeper`` (the handlers take either)."""

    def __init__(self, settings: GatekeeperSettings,
                 build: Callable[[GatekeeperSettings], Gatekeeper] = Gatekeeper) -> None:
        self.settings = settings
        self.lines: dict[str, Gatekeeper] = {product: build(settings.for_line(product))
                                             for product in settings.lines()}

    @property
    def first(self) -> Gatekeeper:
        """The line that answers what names no line: Mapbox's when it is enabled."""
        return self.lines.get(MAPBOX) or next(iter(self.lines.values()))

    def line_of_model(self, model_name: str) -> Gatekeeper:
        product = product_of_model(self.settings.model_name, model_name)
        return self.lines.get(product) if product is not None and product in self.lines else self.first

    # --- the entries of one gatekeeper, routed -----------------------------------------------------
    def on_candidate(self, candidate: ModelCandidate) -> list:
        line = self.lines.get(candidate.product)
        if line is None:
            raise NoLine(f"product {candidate.product!r} has no model line here (enabled: "
                         f"{', '.join(self.lines)}; EMBERWATCH_MODEL_LINES)")
        return line.on_candidate(candidate)

    def on_tile(self, tile: TileReady) -> list:
        line = self.lines.get(tile.product)
        return line.on_tile(tile) if line is not None else []

    def on_tiles(self, tiles: list[TileReady]) -> list:
        """Each line scores its own product's tiles, in the order they came."""
        by_product: dict[str, list[TileReady]] = {}
        for tile in tiles:
            by_product.setdefault(tile.product, []).append(tile)
        events: list = []
        for product, own in by_product.items():
            line = self.lines.get(product)
            if line is None:
                log.debug("tiles of a product without a model line not scored",
                          extra={"product": product, "tiles": len(own)})
                continue
            events.extend(line.on_tiles(own))
        return events

    def on_relabels(self, events: list[TileRelabelled]) -> list:
        return [out for line in self.lines.values() for out in line.on_relabels(events)]

    def on_feedback(self, event: LabelFeedback) -> list:
        return [out for line in self.lines.values() for out in line.on_feedback(event)]

    def on_tick(self) -> list:
        return [out for line in self.lines.values() for out in line.on_tick()]

    def on_command(self, command: ModelCommand) -> list:
        return self.line_of_model(command.model_name).on_command(command)
