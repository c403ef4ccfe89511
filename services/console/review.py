"""What makes a fire worth a person's look, beyond what the page sees in its prediction: a tile of it
that the models disagree on, or that the champion is unsure of, and that no person has labelled yet."""

from __future__ import annotations

from services.console.view import ConsoleView

UNSURE = 0.15  # |P(fire) - 0.5| below this: the champion is unsure (the page uses the same margin)


def feedback_pending(view: ConsoleView, fire_key: str) -> bool:
    for tile_id in view.tiles_by_fire.get(fire_key, []):
        if tile_id in view.feedback:
            continue
        p = view.prediction_of(tile_id)
        champion = (p or {}).get("champion")
        if champion is None:
            continue
        if p.get("disagree") or abs(float(champion.get("wildfire", 0.0)) - 0.5) < UNSURE:
            return True
    return False
