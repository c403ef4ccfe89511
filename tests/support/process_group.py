"""Stopping a child started with ``start_new_session=True``: SIGTERM to its process group, SIGKILL
if it has not exited in time."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess


def stop_group(proc: subprocess.Popen, timeout_s: float = 15.0) -> bool:
    """Stop ``proc``'s process group. True if it exited on SIGTERM within ``timeout_s``."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout_s)
        return True
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
        return False
