"""The tile store (``emberwatch/common/tile_store.py``): a local directory or an S3 bucket, and what
a reader accepts from it."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlparse

from pydantic import BaseModel, Field, SecretStr, field_validator

# What EMBERWATCH_TILE_STORE_URL's prefix may hold: characters a URI carries as they are.
_S3_PREFIX = re.compile(r"[A-Za-z0-9._/-]*")


class TileStoreSettings(BaseModel):
    tile_store_url: str | None = Field(
        None,
        description="Where the tiler stores tiles. Unset (or empty): the local directory "
                    "EMBERWATCH_TILER_TILE_ROOT (file:// URIs, one host or a shared volume); "
                    "s3://bucket/prefix: an S3 bucket that every node reads (s3:// URIs). The readers "
                    "accept a tile's URI only inside this bucket and prefix or under the local root.",
    )
    tiler_tile_root: Path | None = Field(
        None, description="The local tile store's directory (tiles as <root>/<id[:2]>/<id>.<ext>): the tiler writes "
                          "there when EMBERWATCH_TILE_STORE_URL is unset, and every reader (trainer, gatekeeper, "
                          "console) accepts file:// tile URIs only under it; default <EMBERWATCH_STATE_DIR>/tiles.")
    tile_max_bytes: int = Field(
        20 * 1024 * 1024, ge=1024, description="Largest tile a reader accepts (bytes); a bigger one is refused "
                                                "unread.")
    s3_endpoint_url: str | None = Field(
        None, description="S3 endpoint of the tile store, for S3-compatible servers (e.g. SeaweedFS's S3 "
                          "gateway, http://seaweedfs:8333 on compose.yaml's network); unset: AWS S3.")
    s3_region: str | None = Field(
        None, description="Region of the tiles bucket; unset: boto3's own (AWS_REGION, ~/.aws/config, "
                          "else us-east-1).")
    s3_access_key_id: SecretStr | None = Field(
        None, description="Access key id for the tile store (secret); unset with the secret key: boto3's "
                          "default credential chain (AWS_* variables, web identity, instance profile).")
    s3_secret_access_key: SecretStr | None = Field(
        None, description="Secret access key for the tile store (secret); set together with the key id.")
    s3_connect_timeout_s: float = Field(
        5.0, gt=0, description="Timeout to connect to the S3 endpoint (a reader's own timeout bounds each read).")
    s3_read_timeout_s: float = Field(
        30.0, gt=0, description="Timeout of one S3 response for the tiler's writes.")
    s3_max_attempts: int = Field(
        4, ge=1, description="Attempts of one S3 request on connection errors, 5xx and throttling "
                             "(botocore's standard retries, backoff with jitter) before it counts as unreachable.")

    @field_validator("tile_store_url")
    @classmethod
    def _tile_store_url_is_s3(cls, value: str | None) -> str | None:
        """Refuse at start what the tile store could not use, naming the setting."""
        if value is None:
            return None
        value = value.strip()
        parsed = urlparse(value)
        if parsed.scheme != "s3" or not parsed.netloc or parsed.query or parsed.fragment:
            raise ValueError(f"EMBERWATCH_TILE_STORE_URL must be unset or s3://bucket/prefix, got {value!r}")
        if not _S3_PREFIX.fullmatch(parsed.path):
            raise ValueError("EMBERWATCH_TILE_STORE_URL: the prefix may hold only letters, digits and "
                             f"._-/ (it becomes part of every tile's URI), got {parsed.path!r}")
        return value
