"""A private PostgreSQL (Debian's server binaries) for the tests: its own data directory, a port
chosen at run time on 127.0.0.1, password authentication, stopped and removed at the end.

PostgreSQL refuses to run as root, so as root the server runs as the ``postgres`` user the Debian
package creates.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from emberwatch.common.telemetry import free_port

USER = "emberwatch"
PASSWORD = "pg-test-secret-7f3a"


def server_binaries() -> Path | None:
    """The directory of Debian's ``initdb``/``pg_ctl`` (newest major version), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).resolve().parent if on_path else None


def _as_server_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@contextmanager
def running_postgres() -> Iterator[str]:
    """Yield ``postgresql://emberwatch:<password>@127.0.0.1:<port>/emberwatch`` while it runs."""
    bindir = server_binaries()
    if bindir is None:
        raise RuntimeError("PostgreSQL server binaries not found: scripts/setup installs Debian's postgresql")
    home = Path(tempfile.mkdtemp(prefix="emberwatch-pg-"))
    data = home / "data"
    pwfile = home / "pw"
    pwfile.write_text(PASSWORD + "\n")
    if os.geteuid() == 0:
        shutil.chown(home, "postgres", "postgres")
        shutil.chown(pwfile, "postgres", "postgres")
    port = free_port()
    subprocess.run(_as_server_user([str(bindir / "initdb"), "-D", str(data), "-U", USER, "--auth=scram-sha-256",
                                    f"--pwfile={pwfile}", "-E", "UTF8", "--no-sync"]),
                   check=True, capture_output=True, timeout=120)
    options = f"-p {port} -k {home} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(_as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l",
                                    str(home / "server.log"), "-w", "-t", "60", "start"]),
                   check=True, capture_output=True, timeout=90)
    try:
        subprocess.run(_as_server_user([str(bindir / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", USER,
                                        "-d", "postgres", "-c", f"CREATE DATABASE {USER}"]),
                       check=True, capture_output=True, timeout=60, env={**os.environ, "PGPASSWORD": PASSWORD})
        yield f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{port}/{USER}"
    finally:
        stopped = subprocess.run(_as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                                                  "-w", "stop"]), capture_output=True, timeout=60)
        if stopped.returncode != 0 and (data / "postmaster.pid").exists():
            pid = int((data / "postmaster.pid").read_text().split()[0])
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(home, ignore_errors=True)
