"""A STAC API and COG simulator of Sentinel-2 L2A (Earth Search v1's shapes), for the tiler's Sentinel-2 line."""
