"""Emberwatch: the common package every service imports (contracts, settings, broker, metrics, CLI)."""

__version__ = "0.1.0"
