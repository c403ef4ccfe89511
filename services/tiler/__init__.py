"""Tiler: Mapbox imagery for every new fire and its matched fire-free places (DESIGN §1, §3)."""
