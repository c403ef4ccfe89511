"""The console's own metrics (the broker's are common; the refused requests' are web_security.py's)."""

from __future__ import annotations

from prometheus_client import Counter

CONSOLE_REQUESTS = Counter("emberwatch_console_writes_total",
                           "Console write requests, by kind (command, feedback, signin) and outcome "
                           "(ok, invalid, refused, throttled, unauthorized, unknown_tile).",
                           ["kind", "outcome"])
