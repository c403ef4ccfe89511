"""Start, watch and stop background processes by PID file and process group.

A process is started in its own session (its own process group), its PID and start command are
written under ``<state>/run``; it is stopped by signalling that group, and only when the PID still
belongs to the command that was started (a recycled PID is never signalled).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProcessRecord:
    name: str
    pid: int
    argv: list[str]
    started_at: float

    @classmethod
    def load(cls, path: Path) -> ProcessRecord | None:
        try:
            return cls(**json.loads(path.read_text()))
        except (FileNotFoundError, ValueError, TypeError):
            return None

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.__dict__))
        tmp.replace(path)


def is_running(record: ProcessRecord) -> bool:
    """True when ``record.pid`` is alive and still runs the program that was started."""
    try:
        cmdline = Path(f"/proc/{record.pid}/cmdline").read_bytes().split(b"\0")
        stat = Path(f"/proc/{record.pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":  # a zombie is not running
        return False
    args = [arg.decode(errors="replace") for arg in cmdline if arg]
    want = list(record.argv)
    # An interpreted program (a script with a shebang) runs as `python script ...`.
    return args[: len(want)] == want or args[1 : len(want) + 1] == want


def start(
    name: str, argv: list[str], *, log_path: Path, pid_path: Path, env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> ProcessRecord:
    """Start ``argv`` in a new session, stdout+stderr appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, cwd=cwd, start_new_session=True,
        )
    record = ProcessRecord(name=name, pid=proc.pid, argv=list(argv), started_at=time.time())
    record.save(pid_path)
    # Until exec() happens the child still looks like this Python: wait for it to become itself.
    deadline = time.monotonic() + 5.0
    while not is_running(record) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    return record


def stop(record: ProcessRecord, *, timeout_s: float = 15.0) -> bool:
    """SIGTERM the record's process group, SIGKILL it after ``timeout_s``. True if it was running."""
    if not is_running(record):
        return False
    _signal_group(record.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _group_alive(record.pid):
            break
        time.sleep(0.1)
    else:
        _signal_group(record.pid, signal.SIGKILL)
        _wait_group_gone(record.pid, 5.0)
    _reap(record.pid)
    return True


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _group_alive(pgid: int) -> bool:
    _reap(pgid)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[-1].split()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        # fields: state ppid pgrp ...
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def _wait_group_gone(pgid: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _group_alive(pgid):
        time.sleep(0.1)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
