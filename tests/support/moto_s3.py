"""A private S3 for the tests: moto's standalone server as its own process on 127.0.0.1, on a port
chosen at run time, spoken to over real HTTP by boto3 (no in-process mocking), stopped at the end.

moto accepts any credentials, so the tests give it made-up ones; they only matter to the tests that
check that no key ever reaches an error message.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from emberwatch.common.telemetry import free_port
from tests.support.process_group import stop_group

ACCESS_KEY_ID = "AKIAEMBERWATCHTEST01"
SECRET_ACCESS_KEY = "s3-test-secret-9c1e/EMBERWATCH+tiles"
REGION = "us-east-1"


@contextmanager
def running_moto_s3(start_timeout_s: float = 60.0) -> Iterator[str]:
    """Yield the endpoint URL (``http://127.0.0.1:<port>``) while the server runs."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY}
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + start_timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"moto server exited: {proc.stderr.read().decode()[-2000:]}")
            try:
                httpx.get(f"{url}/moto-api/", timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"moto server not answering on {url} after {start_timeout_s} s") from None
                time.sleep(0.2)
        yield url
    finally:
        if proc.poll() is None:
            stop_group(proc, 10)
        proc.stderr.close()
