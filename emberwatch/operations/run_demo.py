"""``emberwatch demo``: the whole loop on one machine, on the embedded defaults.

Starts the stack (Kafka, MLflow, Triton, Prometheus), the three simulators and the five services,
then advances the simulated CWFIS season round by round: fires are ingested, tiled, a model is
trained, validated in Triton, compared in shadow with the champion and promoted (or rejected), the
team is told on the Discord simulator, and finally an image is scored through Triton. Everything
stays up afterwards (``emberwatch stack down`` stops it). Running it again continues: state lives
under ``EMBERWATCH_STATE_DIR`` and every step is idempotent, so nothing is done twice.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from emberwatch.common.config import Settings
from emberwatch.operations.watch_pipeline import PipelineWatcher, Tally
from emberwatch.stack import manage
from emberwatch.stack.parts import SERVICES, SIMULATORS

DEMO_PARTS = ",".join(["kafka", "mlflow", "triton", "prometheus",
                       *(f"sim-{s}" for s in SIMULATORS), *SERVICES])
DISCORD_SIM_WEBHOOK = "/api/webhooks/1000000000000000001/emberwatch-demo-token"


def demo_environment(settings: Settings) -> dict[str, str]:
    """Environment the demo gives the services and simulators. A variable already set wins.

    These keep the loop to a few minutes on 2 cores: a 128 px backbone input (224 for the
    reference size), polls every 5 s, training after 60 new tiles, decisions after 60 pairs.
    """
    host = settings.stack_host
    cwfis = f"http://{host}:{settings.cwfis_sim_port}"
    wid, token = DISCORD_SIM_WEBHOOK.rsplit("/", 2)[-2:]
    return {
        "EMBERWATCH_KAFKA_BOOTSTRAP_SERVERS": f"{host}:{settings.kafka_port}",
        "EMBERWATCH_MLFLOW_TRACKING_URI": f"http://{host}:{settings.mlflow_port}",
        "EMBERWATCH_TRITON_URL": f"{host}:{settings.triton_http_port}",
        "EMBERWATCH_TRITON_GRPC_URL": f"{host}:{settings.triton_grpc_port}",
        "EMBERWATCH_STATE_DIR": str(settings.state_dir),
        "EMBERWATCH_CWFIS_CSV_URL": f"{cwfis}/downloads/activefires/activefires.csv",
        "EMBERWATCH_CWFIS_WFS_URL": f"{cwfis}/geoserver/wfs",
        "EMBERWATCH_MAPBOX_API_URL": f"http://{host}:{settings.mapbox_sim_port}",
        "EMBERWATCH_MAPBOX_TOKEN": "pk.simulator",
        "EMBERWATCH_DISCORD_WEBHOOK_URL": f"http://{host}:{settings.discord_sim_port}{DISCORD_SIM_WEBHOOK}",
        "EMBERWATCH_SIM_DISCORD_WEBHOOK_ID": wid,
        "EMBERWATCH_SIM_DISCORD_TOKEN": token,
        "EMBERWATCH_MAPBOX_SIM_CWFIS_SEASON": "default",
        "EMBERWATCH_SIM_CWFIS_SPEED": "0",
        "EMBERWATCH_INGESTOR_POLL_INTERVAL_S": "5",
        "EMBERWATCH_IMAGE_SIZE": "128",
        "EMBERWATCH_TRAINER_TRAIN_AFTER_NEW_TILES": "60",
        "EMBERWATCH_TRAINER_DEBOUNCE_S": "10",
        "EMBERWATCH_TRAINER_UNITS": "128,256",
        "EMBERWATCH_TRAINER_LEARNING_RATES": "0.001",
        "EMBERWATCH_GATE_MIN_SAMPLES": "60",
        "EMBERWATCH_GATE_MIN_WILDFIRE_SAMPLES": "20",
        "EMBERWATCH_LOG_FORMAT": "json",
    }


@dataclass
class DemoResult:
    tally: Tally
    discord_posts: int
    prediction: object | None
    seconds: float
    settings: Settings


Reporter = Callable[[str], None]
STEP_HOURS = 12.0  # simulated hours per step: fires last days, so each is polled several times
POLL_WAIT_S = 6.0  # a little over the demo's poll interval


async def _wait(cond: Callable[[], bool], timeout_s: float, tick: Callable[[], None]) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        tick()
        if cond():
            return True
        await asyncio.sleep(1.0)
    return cond()


def discord_posts(settings: Settings) -> list[dict]:
    """The messages the Discord simulator accepted (its /api/_posted page), oldest first."""
    try:
        r = httpx.get(f"http://{settings.stack_host}:{settings.discord_sim_port}/api/_posted", timeout=5)
        return list(r.json()["messages"])
    except (httpx.HTTPError, ValueError, KeyError):
        return []


def message_fingerprint(message: dict) -> str:
    """What a message says (content and embeds), without its id and timestamp: equal = duplicate."""
    import json

    return json.dumps({"content": message.get("content"), "embeds": message.get("embeds")}, sort_keys=True)


def _advance_season(settings: Settings, hours: float) -> dict:
    r = httpx.post(f"http://{settings.stack_host}:{settings.cwfis_sim_port}/_admin/clock",
                   json={"advance_hours": hours}, timeout=10)
    r.raise_for_status()
    return r.json()


def start_system(settings: Settings, report: Reporter = print) -> Settings:
    """Start every part of the system (stack, simulators, services) with the demo's environment."""
    env = {**demo_environment(settings), **os.environ}  # a variable already set wins
    settings = settings.model_copy(update={"stack_parts": DEMO_PARTS})
    report(f"starting {len(DEMO_PARTS.split(','))} parts (state in {settings.state_dir})")
    manage.up(settings, on_event=lambda name, msg: report(f"{name}: {msg}"), env=env)
    return settings


async def advance_season(settings: Settings, hours: float, tick: Callable[[], None] = lambda: None) -> dict:
    """Step the simulated season by ``hours`` so that every poll sees it (a fire that starts and
    ends between two polls would never be seen, as with the real feed)."""
    steps = max(1, round(hours / STEP_HOURS))
    state: dict = {}
    for _ in range(steps):
        state = await asyncio.to_thread(_advance_season, settings, hours / steps)
        await _wait(lambda: False, POLL_WAIT_S, tick)
    return state


async def run_demo(
    settings: Settings,
    *,
    rounds: int = 3,
    hours_per_round: float = 240.0,
    round_timeout_s: float = 420.0,
    report: Reporter = print,
    on_progress: Callable[[Tally], None] = lambda tally: None,
) -> DemoResult:
    started = time.monotonic()
    settings = await asyncio.to_thread(start_system, settings, report)

    watcher = PipelineWatcher(settings.kafka_bootstrap_servers)
    await watcher.start()
    tally = watcher.tally
    tick = lambda: on_progress(tally)  # noqa: E731
    try:
        await asyncio.sleep(3)  # catch up with what earlier runs left on the topics
        for round_no in range(1, rounds + 1):
            decisions_before = len(tally.decisions)
            fires_before = len(tally.fires)
            state = await advance_season(settings, hours_per_round, tick)
            report(f"round {round_no}: season advanced {hours_per_round:g} h to {state.get('now', '?')}, "
                   f"{len(tally.fires) - fires_before} new fires")
            got = await _wait(lambda: len(tally.decisions) > decisions_before, round_timeout_s, tick)
            last = tally.decisions[-1] if tally.decisions else None
            if got and last is not None:
                report(f"round {round_no}: decision {last.decision} for version {last.candidate_version}"
                       f" (champion was {last.champion_version}): {last.reason}")
            else:
                report(f"round {round_no}: no new decision within {round_timeout_s:.0f}s "
                       f"({len(tally.tile_ids)} tiles, {len(tally.candidates)} candidates so far)")
            promoted = [d for d in tally.decisions if d.decision == "promoted"]
            compared = [d for d in tally.decisions
                        if d.champion_version and d.decision in ("promoted", "rejected")]
            if promoted and compared:
                break  # a champion serves and a challenger has been judged against it
        await _wait(lambda: len(discord_posts(settings)) >= min(1, len(tally.decisions)), 60, tick)
        prediction = None
        if any(d.decision == "promoted" for d in tally.decisions):
            prediction = await asyncio.to_thread(_predict_one_tile, settings, tally)
    finally:
        await watcher.stop()
    return DemoResult(tally=tally, discord_posts=len(discord_posts(settings)), prediction=prediction,
                      seconds=time.monotonic() - started, settings=settings)


def _predict_one_tile(settings: Settings, tally: Tally):
    from emberwatch.operations.predict_image import predict_file

    tiles = sorted((settings.state_dir / "tiles").rglob("*.jpg")) + sorted(
        (settings.state_dir / "tiles").rglob("*.png"))
    if not tiles:
        return None
    return predict_file(Path(tiles[0]), url=settings.triton_url, protocol="http")


def where_to_look(settings: Settings) -> dict[str, str]:
    host = settings.stack_host
    return {
        "MLflow UI": f"http://{host}:{settings.mlflow_port}",
        "Prometheus": f"http://{host}:{settings.prometheus_port}",
        "Discord simulator (posts)": f"http://{host}:{settings.discord_sim_port}/",
        "Triton": f"http://{host}:{settings.triton_http_port}/v2/models/wildfire",
        "logs": str(settings.state_dir / "logs"),
    }

