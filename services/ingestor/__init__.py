"""Ingestor: polls the CWFIS feeds and publishes ``fires.observed.v1`` for what changed."""
