"""The public services the pipeline reads and posts to: the CWFIS fire feeds, Mapbox imagery and
the Discord webhook."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr


class ExternalApiSettings(BaseModel):
    cwfis_csv_url: str = Field(
        "https://cwfis.cfs.nrcan.gc.ca/downloads/activefires/activefires.csv",
        description="Legacy CWFIS active-fires CSV; empty string switches it off.",
    )
    cwfis_wfs_url: str = Field(
        "https://geoserver.cwfif.nrcan.gc.ca/geoserver/wfs",
        description="CWFIF GeoServer WFS endpoint; empty string switches it off.",
    )
    mapbox_api_url: str = Field("https://api.mapbox.com", description="Mapbox API base URL.")
    mapbox_token: SecretStr | None = Field(None, description="Mapbox access token (secret).")
    discord_webhook_url: SecretStr | None = Field(
        None, description="Discord webhook URL (secret: it contains the token)."
    )
