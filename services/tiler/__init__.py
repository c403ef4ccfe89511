"""Tiler: Mapbox imagery for every new fire and its matched fire-free places.

See docs/architecture.md#services and #data-honesty.
"""
