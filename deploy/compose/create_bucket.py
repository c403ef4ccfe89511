"""compose.yaml's s3-init job: create a bucket on the S3 store unless it exists (idempotent).

    python create_bucket.py ENDPOINT BUCKET

The keys are read from the compose secrets s3_access_key and s3_secret_key (files under
$SECRETS_DIR, default /run/secrets), never from the command line or the environment.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError


def read_secret(name: str) -> str:
    value = (Path(os.environ.get("SECRETS_DIR", "/run/secrets")) / name).read_text().strip()
    if not value:
        raise SystemExit(f"the secret {name} is empty")
    return value


def ensure_bucket(endpoint: str, bucket: str) -> bool:
    """Create ``bucket``; ``False`` when it was there already."""
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id=read_secret("s3_access_key"),
                      aws_secret_access_key=read_secret("s3_secret_key"),
                      config=Config(retries={"max_attempts": 10, "mode": "standard"}))
    try:
        s3.head_bucket(Bucket=bucket)
        return False
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise
    try:
        s3.create_bucket(Bucket=bucket)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
        return False
    return True


if __name__ == "__main__":
    endpoint, bucket = sys.argv[1:3]
    created = ensure_bucket(endpoint, bucket)
    print(f"bucket {bucket} {'created' if created else 'already there'} on {endpoint}")
