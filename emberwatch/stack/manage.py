"""``emberwatch stack up|down|status|logs``: the local stack, health-checked and idempotent."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from emberwatch.common.config import Settings
from emberwatch.security.command_keys import ensure_local_keys
from emberwatch.stack import processes
from emberwatch.stack.parts import PART_BUILDERS, Part, selected_parts


@dataclass(frozen=True)
class PartStatus:
    name: str
    address: str
    pid: int | None
    running: bool
    healthy: bool

    @property
    def state(self) -> str:
        if self.running and self.healthy:
            return "up"
        if self.running:
            return "starting" if self.pid else "unhealthy"
        return "down"


class StackError(RuntimeError):
    pass


def run_dir(settings: Settings) -> Path:
    return settings.state_dir / "run"


def log_path(settings: Settings, name: str) -> Path:
    return settings.state_dir / "logs" / f"{name}.log"


def pid_path(settings: Settings, name: str) -> Path:
    return run_dir(settings) / f"{name}.json"


def _record(settings: Settings, name: str) -> processes.ProcessRecord | None:
    return processes.ProcessRecord.load(pid_path(settings, name))


def part_status(settings: Settings, name: str) -> PartStatus:
    part = PART_BUILDERS[name](settings)
    record = _record(settings, name)
    running = record is not None and processes.is_running(record)
    return PartStatus(
        name=name, address=part.address, pid=record.pid if running and record else None,
        running=running, healthy=running and part.healthy(),
    )


def up(
    settings: Settings,
    *,
    on_event: Callable[[str, str], None] = lambda name, msg: None,
    env: Mapping[str, str] | None = None,
) -> list[PartStatus]:
    """Start every selected part that is not already up; wait for each to be healthy.

    Parts run with ``env`` (default: this process's environment) plus their own variables. The keys
    that sign operator commands (the console's, the Discord bot's, this user's) are made first where
    missing, and trusted by the local gatekeeper (never overwritten: a revoked key stays revoked).
    """
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    for issuer in ensure_local_keys(settings):
        on_event("keys", f"made the command key of {issuer} (trusted by the local gatekeeper)")
    statuses = []
    for name in selected_parts(settings):
        part = PART_BUILDERS[name](settings)
        record = _record(settings, name)
        if record is not None and processes.is_running(record):
            if _wait_healthy(part, record):
                on_event(name, f"already up at {part.address}")
                statuses.append(part_status(settings, name))
                continue
            raise StackError(f"{name} (pid {record.pid}) runs but is not healthy; see {log_path(settings, name)}")
        if part.healthy():
            raise StackError(
                f"{name}: something not started by this stack already answers at {part.address}; "
                f"stop it or choose another port (EMBERWATCH_*_PORT)"
            )
        on_event(name, "starting")
        part_env = {**(os.environ if env is None else env), **part.env}
        record = processes.start(name, part.argv, log_path=log_path(settings, name),
                                 pid_path=pid_path(settings, name), env=part_env, cwd=settings.state_dir)
        if not _wait_healthy(part, record):
            processes.stop(record)
            pid_path(settings, name).unlink(missing_ok=True)
            raise StackError(f"{name} did not become healthy in {part.ready_timeout_s:.0f}s; "
                             f"see {log_path(settings, name)}:\n{tail(log_path(settings, name), 15)}")
        on_event(name, f"up at {part.address}")
        statuses.append(part_status(settings, name))
    return statuses


def _wait_healthy(part: Part, record: processes.ProcessRecord) -> bool:
    deadline = time.monotonic() + part.ready_timeout_s
    while time.monotonic() < deadline:
        if not processes.is_running(record):
            return False
        if part.healthy():
            return True
        time.sleep(0.2)
    return False


def down(settings: Settings, *, on_event: Callable[[str, str], None] = lambda name, msg: None) -> list[str]:
    """Stop what ``up`` started (by PID file and process group), in reverse order."""
    stopped = []
    for name in reversed(list(PART_BUILDERS)):
        path = pid_path(settings, name)
        record = processes.ProcessRecord.load(path)
        if record is None:
            continue
        if processes.stop(record):
            stopped.append(name)
            on_event(name, "stopped")
        path.unlink(missing_ok=True)
    return stopped


def status(settings: Settings) -> list[PartStatus]:
    """The selected parts, and every other part this stack started (e.g. by the demo)."""
    names = selected_parts(settings)
    names += [n for n in PART_BUILDERS if n not in names and pid_path(settings, n).is_file()]
    return [part_status(settings, name) for name in names]


def tail(path: Path, lines: int = 40) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read().decode(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(data.splitlines()[-lines:])
