"""Mapbox simulator: the Static Images and Raster Tiles APIs with procedural satellite imagery."""
