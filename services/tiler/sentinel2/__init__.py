"""Sentinel-2 L2A imagery of a fire: STAC search, windowed COG reads, composites, indices and the pre/post pair.

A library the tiler calls beside its Mapbox client (``provider.Sentinel2Provider``); nothing here
touches Kafka or the tile store.
"""
