"""CWFIS simulator: the legacy active-fires CSV and the CWFIF WFS, from a deterministic season."""
