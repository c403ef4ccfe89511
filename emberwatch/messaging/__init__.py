"""Broker wiring every service shares: a FastStream KafkaBroker from settings, at-least-once
consumers with a dead-letter path, and metrics."""
