"""The operator console: a web application over the event streams (map, tiles, feedback, models)."""
