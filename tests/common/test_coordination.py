"""The coordination database on both dialects it supports: SQLite (one host) and a real PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pydantic import SecretStr

from emberwatch.common.config import Settings
from emberwatch.common.coordination import coordination_url, describe, open_coordination

REPO = Path(__file__).resolve().parents[2]


def test_default_is_a_sqlite_file_under_the_state_dir(tmp_path: Path) -> None:
    assert coordination_url(Settings(state_dir=tmp_path)) == f"sqlite:///{tmp_path.resolve()}/coordination.sqlite3"


def test_postgres_urls_use_psycopg_and_describe_hides_the_password() -> None:
    url = coordination_url(Settings(coordination_url=SecretStr("postgresql://ew:s3cret@db:5432/coord")))
    assert url == "postgresql+psycopg://ew:s3cret@db:5432/coord"
    assert "s3cret" not in describe(url)


def test_an_unreachable_database_is_a_clear_error_without_the_password() -> None:
    from emberwatch.common.telemetry import free_port

    url = f"postgresql+psycopg://ew:hunter2-secret@127.0.0.1:{free_port()}/coord?connect_timeout=2"
    with pytest.raises(ConnectionError) as info:
        open_coordination(url)
    assert "not reachable" in str(info.value)
    assert "hunter2-secret" not in str(info.value)


def test_other_databases_are_refused() -> None:
    with pytest.raises(ValueError, match="sqlite:// or postgresql://"):
        open_coordination("mysql://x@y/z")


HOLDER = textwrap.dedent("""
    import asyncio, json, sys, time
    from emberwatch.common.coordination import ExclusiveSection, open_coordination

    async def main(url, out, rounds):
        section = ExclusiveSection(open_coordination(url), "test-section")
        spans = []
        for _ in range(rounds):
            async with section.held():
                start = time.time()
                await asyncio.sleep(0.02)  # an await inside the section, like a publish
                spans.append((start, time.time()))
        with open(out, "w") as fh:
            json.dump(spans, fh)

    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
""")


def test_an_exclusive_section_has_one_holder_across_processes(coordination: str, tmp_path: Path) -> None:
    url = coordination
    open_coordination(url)  # tables first, so the holders do not race to create them
    outs = [tmp_path / f"spans-{i}.json" for i in range(3)]
    procs = [subprocess.Popen([sys.executable, "-c", HOLDER, url, str(out), "15"], cwd=REPO) for out in outs]
    for proc in procs:
        assert proc.wait(timeout=120) == 0
    spans = sorted(span for out in outs for span in json.loads(out.read_text()))
    assert len(spans) == 45
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert start >= end, "two processes were inside the section at once"
