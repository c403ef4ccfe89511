"""The "this is a fire" / "this is not a fire" buttons under a detection post.

A button's ``custom_id`` carries the tile and the label it gives (Discord keeps it with the message, so
a click after a restart still works); the bot (``bot.py``) turns a click into the same
labels.feedback.v1 event as ``/label``. Pure: the notifier renders the buttons, the bot parses them.
"""

from __future__ import annotations

import re
from typing import Any

PREFIX = "emberwatch:label"
# Discord allows 100 characters in a custom_id: the prefix, a sha256 and the longest label take 92.
CUSTOM_ID = re.compile(rf"^{PREFIX}:(?P<tile>[0-9a-f]{{64}}):(?P<label>wildfire|nowildfire)$")

BUTTON, ACTION_ROW = 2, 1
DANGER, SECONDARY = 4, 2  # Discord's button styles (red, grey)


def custom_id(tile_id: str, label: str) -> str:
    return f"{PREFIX}:{tile_id}:{label}"


def parse_custom_id(value: str) -> tuple[str, str] | None:
    """(tile id, label) of one of our buttons, or None for anything else."""
    match = CUSTOM_ID.match(value)
    return (match["tile"], match["label"]) if match else None


def label_buttons(tile_id: str) -> list[dict[str, Any]]:
    """One action row with the two buttons (Discord's message-component JSON)."""
    return [{"type": ACTION_ROW, "components": [
        {"type": BUTTON, "style": DANGER, "label": "This is a fire", "emoji": {"name": "🔥"},
         "custom_id": custom_id(tile_id, "wildfire")},
        {"type": BUTTON, "style": SECONDARY, "label": "This is not a fire",
         "custom_id": custom_id(tile_id, "nowildfire")},
    ]}]
