"""The Mapbox request budget every tiler replica shares (SQLite and a real PostgreSQL), and three
clients against the real simulator: together they keep to the account's rate."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from emberwatch.common.coordination import open_coordination
from services.tiler.fetch_tile import FetchConfig, TileFetcher
from services.tiler.mapbox_client import ClientConfig, MapboxClient, TokenSource
from services.tiler.request_budget import MAX_WAIT_STEP_S, WAIT_JITTER, RequestBudget, waiting_time
from simulators.mapbox.app import DEFAULT_TOKENS, SimState
from tests.simulators.mapbox.helpers import running_simulator

REPO = Path(__file__).resolve().parents[3]


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_gives_its_burst_then_its_rate_and_a_pause_holds_everyone(coordination: str) -> None:
    url = coordination
    clock = Clock()
    name = f"b-{id(clock)}"
    budget = RequestBudget(open_coordination(url), per_minute=60, burst=3, name=name, clock=clock)
    other = RequestBudget(open_coordination(url), per_minute=60, burst=3, name=name, clock=clock)  # a replica
    assert [budget.try_take(), other.try_take(), budget.try_take()] == [0.0, 0.0, 0.0]
    assert other.try_take() == pytest.approx(1.0)  # 1 token a second: the next one in 1 s
    clock.now += 0.5
    assert budget.try_take() == pytest.approx(0.5)
    clock.now += 0.5
    assert budget.try_take() == 0.0
    clock.now += 100  # a quiet spell refills up to the burst, not more
    assert [other.try_take() for _ in range(4)][:3] == [0.0, 0.0, 0.0]
    clock.now += 10
    budget.pause_all(5.0)  # one replica got a 429 that said 5 s
    assert other.try_take() == pytest.approx(5.0)
    clock.now += 5.0
    assert other.try_take() == 0.0


TAKER = textwrap.dedent("""
    import asyncio, json, pathlib, sys, time
    from emberwatch.common.coordination import open_coordination
    from services.tiler.request_budget import RequestBudget

    url, name, out = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3])
    budget = RequestBudget(open_coordination(url), per_minute=1200, burst=5, name=name)
    out.with_suffix(".ready").touch()  # imported and connected: the test starts every replica at once
    go = out.parent / "go"
    deadline = time.time() + 120
    while not go.exists() and time.time() < deadline:
        time.sleep(0.01)
    until = float(go.read_text())
    taken = []

    async def take_until() -> None:  # as the tiler's Mapbox client takes them
        while time.time() < until:
            await budget.take()
            taken.append(time.time())

    asyncio.run(take_until())
    out.write_text(json.dumps(taken))
""")


def test_a_waiting_replica_sleeps_the_wait_plus_a_random_part_of_it_capped() -> None:
    assert waiting_time(0.05, lambda a, b: a) == pytest.approx(0.05)
    assert waiting_time(0.05, lambda a, b: b) == pytest.approx(0.05 * (1 + WAIT_JITTER))
    assert waiting_time(30.0, lambda a, b: b) == pytest.approx(MAX_WAIT_STEP_S * (1 + WAIT_JITTER))
    draws = {round(waiting_time(0.05), 6) for _ in range(50)}
    assert len(draws) > 10 and all(0.05 <= d <= 0.05 * (1 + WAIT_JITTER) for d in draws)


def test_replicas_in_separate_processes_never_overspend(coordination: str, tmp_path: Path) -> None:
    url = coordination
    import time

    open_coordination(url)
    name = f"procs-{tmp_path.name}"
    outs = [tmp_path / f"taken-{i}.json" for i in range(3)]
    procs = [subprocess.Popen([sys.executable, "-c", TAKER, url, name, str(o)], cwd=REPO) for o in outs]
    deadline = time.monotonic() + 120  # a loaded machine imports slowly: the window opens once all are up
    while not all(o.with_suffix(".ready").exists() for o in outs) and time.monotonic() < deadline:
        assert all(p.poll() is None for p in procs), "a replica exited before it was ready"
        time.sleep(0.05)
    (tmp_path / "go").write_text(str(time.time() + 4.0))
    for p in procs:
        assert p.wait(timeout=120) == 0
    taken = sorted(t for o in outs for t in json.loads(o.read_text()))
    assert len(taken) >= 20 and all(json.loads(o.read_text()) for o in outs)  # every replica got some
    # 20 a second with bursts of 5: no window of w seconds holds more than 5 + 20·w takes.
    for i, start in enumerate(taken):
        for j in range(i, len(taken)):
            assert j - i + 1 <= 5 + 20 * (taken[j] - start) + 1  # +1: the clock reads around the update


async def _three_replicas(sim_url: str, budget_for) -> None:  # noqa: ANN001
    token = sorted(DEFAULT_TOKENS)[0]

    async def replica(i: int) -> None:
        client = MapboxClient(ClientConfig(base_url=sim_url, rate_limit_max_wait_s=5), TokenSource(token),
                              budget=budget_for(i))
        try:
            fetcher = TileFetcher(client, FetchConfig(size_px=64))
            await asyncio.gather(*(fetcher.fetch(55.0 + i, -110.0 + k * 0.01) for k in range(12)))
        finally:
            await client.aclose()

    await asyncio.gather(*(replica(i) for i in range(3)))


async def test_three_replicas_sharing_the_budget_stay_under_mapbox_s_limit(tmp_path: Path) -> None:
    engine = open_coordination(f"sqlite:///{tmp_path / 'c.sqlite3'}")
    with running_simulator(SimState(rate_limit=20, rate_interval_s=1.0)) as (sim_url, state):
        # 12 a second with bursts of 3: at most 15 in any second, under the simulator's 20.
        await _three_replicas(sim_url, lambda i: RequestBudget(engine, per_minute=720, burst=3))
        assert state.by_status[429] == 0
        assert state.by_status[200] == 36


async def test_without_a_shared_budget_the_same_replicas_are_rate_limited() -> None:
    """The control of the test above: the same load, each replica on its own."""
    with running_simulator(SimState(rate_limit=20, rate_interval_s=1.0)) as (sim_url, state):
        await _three_replicas(sim_url, lambda i: None)
        assert state.by_status[429] > 0
        assert state.by_status[200] == 36  # every tile still arrived, after the pauses
