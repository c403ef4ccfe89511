"""``emberwatch demo``: the whole loop on one machine, on the embedded defaults.

Starts the stack (Kafka, MLflow, Triton, Prometheus), the simulators (CWFIS, Mapbox, Discord and the
STAC/COG simulator of Sentinel-2) and the six services,
then advances the simulated CWFIS season step by step: fires are ingested, tiled, a model is
trained, validated in Triton and crowned champion over the floor; a later candidate is compared in
shadow with it and promoted or rejected by the gate on paired evidence; the team is told on the
Discord simulator, and finally an image is scored through Triton. The demo succeeds only when all of
that happened (``DemoResult.missing``); otherwise it says which step did not. Then the operator
console starts beside the system; when it has no operators yet, the demo adds one, ``demo``, and says
where its secret is (``emberwatch console-operator add NAME`` adds your own).

Everything stays up afterwards (``emberwatch stack down`` stops it). Running it again continues:
state lives under ``EMBERWATCH_STATE_DIR`` and every step is idempotent, so nothing is done twice
(the goal then is a new shadow decision against the champion).
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
from emberwatch.contracts.products import MAPBOX, SENTINEL2_SWIR
from emberwatch.operations.watch_pipeline import PipelineWatcher, Tally
from emberwatch.stack import manage
from emberwatch.stack.parts import SERVICES, SIMULATORS

DEMO_POLL_INTERVAL_S = 2
DEMO_GATE_MIN_SAMPLES = 60
DEMO_GATE_MAX_PAIRS = 150  # the shadow's last look: a test split (~100-140 tiles) and a few live tiles
DEMO_PARTS = ",".join(["kafka", "mlflow", "triton", "prometheus",
                       *(f"sim-{s}" for s in SIMULATORS), "sim-stac", *SERVICES])
DISCORD_SIM_WEBHOOK = "/api/webhooks/1000000000000000001/emberwatch-demo-token"


def demo_environment(settings: Settings) -> dict[str, str]:
    """Environment the demo gives the services and simulators. A variable already set wins.

    These keep the loop to a few minutes on 2 cores: a 128 px backbone input (224 for the
    reference size), polls every 2 s, training after 100 new tiles (so a shadow can collect its
    pairs before the next candidate arrives), the gate checked every 10 new pairs with 20 pairs of
    each class at least and its last look at 150 pairs (at the defaults a shadow runs up to 5,000
    pairs or a week), and a first model's floor of 0.5 on the lower bounds of recall and
    specificity over at least 20 test tiles per class (defaults: 0.6 and 30).
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
        "EMBERWATCH_INGESTOR_POLL_INTERVAL_S": str(DEMO_POLL_INTERVAL_S),
        "EMBERWATCH_IMAGE_SIZE": "128",
        "EMBERWATCH_TRAINER_TRAIN_AFTER_NEW_TILES": "100",
        "EMBERWATCH_TRAINER_DEBOUNCE_S": "5",
        "EMBERWATCH_TRAINER_UNITS": "128,256",
        "EMBERWATCH_TRAINER_LEARNING_RATES": "0.001",
        "EMBERWATCH_GATEKEEPER_MIN_PAIRS": str(DEMO_GATE_MIN_SAMPLES),
        "EMBERWATCH_GATEKEEPER_MIN_WILDFIRE_PAIRS": "20",
        "EMBERWATCH_GATEKEEPER_MIN_FIRE_FREE_PAIRS": "20",
        "EMBERWATCH_GATEKEEPER_MAX_PAIRS": str(DEMO_GATE_MAX_PAIRS),
        "EMBERWATCH_GATEKEEPER_CHECK_EVERY": "10",
        "EMBERWATCH_GATEKEEPER_FLOOR_RECALL": "0.5",
        "EMBERWATCH_GATEKEEPER_FLOOR_SPECIFICITY": "0.5",
        "EMBERWATCH_GATEKEEPER_FLOOR_MIN_PER_CLASS": "20",
        "EMBERWATCH_LOG_FORMAT": "json",
    }


def sentinel2_environment(settings: Settings) -> dict[str, str]:
    """What ``emberwatch demo --sentinel2`` adds: the tiler's Sentinel-2 line on, searching the STAC
    simulator, on the season's clock (the feed's snapshot times), due fires looked at every poll; the
    trainer and the gatekeeper run the Sentinel-2 SWIR model line beside Mapbox's."""
    return {
        "EMBERWATCH_MODEL_LINES": f"{MAPBOX},{SENTINEL2_SWIR}",
        "EMBERWATCH_TILER_SENTINEL2": "true",
        "EMBERWATCH_TILER_SENTINEL2_STAC_URL": f"http://{settings.stack_host}:{settings.stac_sim_port}",
        "EMBERWATCH_TILER_SENTINEL2_CLOCK": "feed",
        "EMBERWATCH_TILER_SENTINEL2_CHECK_INTERVAL_S": str(DEMO_POLL_INTERVAL_S),
    }


def gate_minimum() -> int:
    """The paired samples the gate needs before it decides, as the demo starts the services
    (a variable already set wins, as in ``start_system``)."""
    return int(os.environ.get("EMBERWATCH_GATEKEEPER_MIN_PAIRS", DEMO_GATE_MIN_SAMPLES))


def served_champion(decisions: list) -> object | None:
    """The decision that made the champion now serving (the latest promotion), if any."""
    return next((d for d in reversed(decisions) if d.decision == "promoted"), None)


def shadow_decision(decisions: list, min_samples: int, after: int = 0) -> object | None:
    """The latest decision (from index ``after``) the shadow gate took on paired evidence against a
    champion, with at least ``min_samples`` pairs: promoted, rejected as worse, or rejected as
    inconclusive at the shadow's last look — not an infra-validation, floor, superseded or operator
    verdict."""
    for d in reversed(decisions[after:]):
        if (d.basis in ("gate", "inconclusive") and d.champion_version and d.decision in ("promoted", "rejected")
                and (d.evidence.n or 0) >= min_samples):
            return d
    return None


@dataclass
class DemoResult:
    tally: Tally
    discord_posts: int
    prediction: object | None
    seconds: float
    settings: Settings
    min_samples: int = DEMO_GATE_MIN_SAMPLES
    decisions_before: int = 0  # decisions already on the topics when this run started
    seconds_to_goal: float | None = None

    @property
    def champion(self):
        return served_champion(self.tally.decisions)

    @property
    def judged(self):
        return shadow_decision(self.tally.decisions, self.min_samples, self.decisions_before)

    def summary(self) -> dict:
        """What this run did, as JSON (``<state>/demo/summary.json``; benchmarks/bench_demo.py reads it)."""
        t = self.tally
        decisions = [{"version": d.candidate_version, "decision": d.decision, "basis": d.basis,
                      "champion": d.champion_version, "n": d.evidence.n, "n_wildfire": d.evidence.n_wildfire,
                      "p_value": d.evidence.p_value, "reason": d.reason} for d in t.decisions[self.decisions_before:]]
        p = self.prediction
        return {
            "ok": not self.missing, "missing": self.missing, "seconds": round(self.seconds, 1),
            "seconds_to_shadow_decision": None if self.seconds_to_goal is None else round(self.seconds_to_goal, 1),
            "fires": len(t.fires), "tiles": len(t.tile_ids), "candidates": [c.version for c in t.candidates],
            "backbones": sorted({c.backbone_weights for c in t.candidates if c.backbone_weights}),
            "decisions": decisions, "discord_posts": self.discord_posts, "duplicate_events": t.duplicate_events,
            "prediction": None if p is None else {"label": p.label, "probabilities": p.probabilities,
                                                   "model_version": p.model_version},
        }

    def write_summary(self) -> Path:
        import json

        path = Path(self.settings.state_dir) / "demo" / "summary.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.summary(), indent=2))
        return path

    @property
    def missing(self) -> list[str]:
        """The steps of the README's promise that did not happen in this run (empty = success)."""
        out = []
        if self.champion is None:
            out.append("no model became champion (see the decisions above: infra validation or the floor "
                       "rejected every candidate)")
        if self.judged is None:
            out.append(f"no later candidate was decided by a shadow comparison against the champion with "
                       f"at least {self.min_samples} paired samples")
        if self.prediction is None:
            out.append("no prediction was made through Triton")
        if self.discord_posts == 0:
            out.append("nothing was posted to the Discord simulator")
        return out


Reporter = Callable[[str], None]
STEP_HOURS = 12.0  # simulated hours per step: fires last days, so each is polled several times
POLL_WAIT_S = DEMO_POLL_INTERVAL_S + 0.5  # a little over the demo's poll interval


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
    """One season step: the imagery simulators' clocks (Mapbox, then STAC) are set FIRST to the CWFIS
    clock's new time, THEN the CWFIS clock is set there, so a fire is never reported (and tiled) before
    the imagery shows it. An imagery simulator that is not running (real Mapbox) is not stepped."""
    from datetime import datetime, timedelta

    host = settings.stack_host
    cwfis = f"http://{host}:{settings.cwfis_sim_port}/_admin"
    r = httpx.get(f"{cwfis}/state", timeout=10)
    r.raise_for_status()
    target = (datetime.fromisoformat(r.json()["now"]) + timedelta(hours=hours)).isoformat()
    for port in (settings.mapbox_sim_port, settings.stac_sim_port):
        try:
            m = httpx.post(f"http://{host}:{port}/_admin/clock", json={"at": target}, timeout=10)
            m.raise_for_status()
        except httpx.ConnectError:
            pass  # that simulator is not running: nothing to keep in step
    r = httpx.post(f"{cwfis}/clock", json={"at": target}, timeout=10)
    r.raise_for_status()
    return r.json()


def system_environment(settings: Settings, *, sentinel2: bool = False) -> dict[str, str]:
    """The environment the demo's parts start with: its defaults (and the Sentinel-2 line's with
    ``sentinel2``), under what is already set."""
    extra = sentinel2_environment(settings) if sentinel2 else {}
    return {**demo_environment(settings), **extra, **os.environ}  # a variable already set wins


def start_system(settings: Settings, report: Reporter = print, *, sentinel2: bool = False) -> Settings:
    """Start every part of the system (stack, simulators, services) with the demo's environment."""
    env = system_environment(settings, sentinel2=sentinel2)
    settings = settings.model_copy(update={"stack_parts": DEMO_PARTS})
    report(f"starting {len(DEMO_PARTS.split(','))} parts (state in {settings.state_dir})")
    manage.up(settings, on_event=lambda name, msg: report(f"{name}: {msg}"), env=env)
    return settings


def start_console(settings: Settings, report: Reporter = print) -> bool:
    """The operator console beside the running system, once the loop has shown what it does (it reads
    every stream from the start and scores the tiles through Triton, so it does not compete with the
    first shadow). With no operators yet, the operator ``demo`` is added (its secret in a file under the
    state directory, reported). A console that cannot start (e.g. its port is taken) is reported, not
    fatal: the loop itself has run."""
    env = system_environment(settings)
    secret_file = ensure_console_operator(settings)
    if secret_file is not None:
        report(f"console operator 'demo': sign in with the secret in {secret_file}")
    try:
        manage.up(settings.model_copy(update={"stack_parts": "console"}),
                  on_event=lambda name, msg: report(f"{name}: {msg}"), env=env)
    except (manage.StackError, OSError) as exc:
        report(f"the operator console did not start: {exc}")
        return False
    return True


def demo_operator_secret_file(settings: Settings) -> Path:
    return settings.state_dir / "console" / "demo-operator-secret"


def ensure_console_operator(settings: Settings) -> Path | None:
    """The console's operator ``demo`` when it has none (see emberwatch/security/console_operators.py): the file
    its secret is in, or None when the console has operators of its own (or their file cannot be used)."""
    from emberwatch.security.console_operators import (
        OperatorFileError,
        OperatorRegistry,
        ensure_demo_operator,
        operators_path,
    )

    registry = OperatorRegistry(operators_path(settings))
    try:
        return ensure_demo_operator(registry, demo_operator_secret_file(settings))
    except (OSError, ValueError, OperatorFileError):
        return None


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
    rounds: int = 5,
    hours_per_round: float = 240.0,
    round_timeout_s: float = 420.0,
    report: Reporter = print,
    on_progress: Callable[[Tally], None] = lambda tally: None,
    sentinel2: bool = False,
) -> DemoResult:
    """Step the season (at most ``rounds`` × ``hours_per_round`` simulated hours) until a champion
    serves and a later candidate was judged against it on evidence; then wait at most
    ``round_timeout_s`` for work still in flight, tell Discord, and predict one tile through Triton.
    With ``sentinel2`` the tiler also makes each fire's Sentinel-2 pair from the STAC simulator."""
    started = time.monotonic()
    settings = await asyncio.to_thread(lambda: start_system(settings, report, sentinel2=sentinel2))
    min_samples = gate_minimum()

    watcher = PipelineWatcher(settings.kafka_bootstrap_servers)
    await watcher.start()
    tally = watcher.tally
    tick = lambda: on_progress(tally)  # noqa: E731
    seconds_to_goal = None
    try:
        await asyncio.sleep(3)  # catch up with what earlier runs left on the topics
        before = len(tally.decisions)
        reported = before

        def goal() -> bool:
            return served_champion(tally.decisions) is not None and \
                shadow_decision(tally.decisions, min_samples, before) is not None

        def report_new_decisions() -> None:
            nonlocal reported
            for d in tally.decisions[reported:]:
                n = f", n={d.evidence.n}" if d.evidence.n else ""
                report(f"decision: version {d.candidate_version} {d.decision} ({d.basis or 'unknown'}"
                       f"{n}; champion was {d.champion_version or 'none'}): {d.reason}")
            reported = len(tally.decisions)

        budget_h = rounds * hours_per_round
        advanced_h, state = 0.0, {}
        while advanced_h < budget_h and not goal():
            step = min(STEP_HOURS, budget_h - advanced_h)
            fires_before = len(tally.fires)
            state = await asyncio.to_thread(_advance_season, settings, step)
            advanced_h += step
            await _wait(goal, POLL_WAIT_S, tick)
            report_new_decisions()
            if advanced_h % hours_per_round < STEP_HOURS or len(tally.fires) > fires_before + 25:
                report(f"season at {state.get('now', '?')} (+{advanced_h:g} h): {len(tally.fires)} fires, "
                       f"{len(tally.tile_ids)} tiles, {len(tally.candidates)} candidates")
        if not goal():
            report(f"season budget of {budget_h:g} h used; waiting up to {round_timeout_s:.0f}s for work "
                   "in flight")
            await _wait(goal, round_timeout_s, lambda: (tick(), report_new_decisions()))
        report_new_decisions()
        if goal():
            seconds_to_goal = time.monotonic() - started
        await _wait(lambda: len(discord_posts(settings)) >= min(1, len(tally.decisions)), 60, tick)
        prediction = None
        if served_champion(tally.decisions) is not None:
            prediction = await asyncio.to_thread(_predict_one_tile, settings, tally)
        await asyncio.to_thread(start_console, settings, report)
    finally:
        await watcher.stop()
    result = DemoResult(tally=tally, discord_posts=len(discord_posts(settings)), prediction=prediction,
                        seconds=time.monotonic() - started, settings=settings, min_samples=min_samples,
                        decisions_before=before, seconds_to_goal=seconds_to_goal)
    result.write_summary()
    return result


def _predict_one_tile(settings: Settings, tally: Tally):
    from emberwatch.operations.predict_image import predict_file

    tiles = sorted((settings.state_dir / "tiles").rglob("*.jpg")) + sorted(
        (settings.state_dir / "tiles").rglob("*.png"))
    if not tiles:
        return None
    try:
        return predict_file(Path(tiles[0]), url=settings.triton_url, protocol="http")
    except Exception:  # noqa: BLE001 - reported as the missing step "no prediction"
        return None


def where_to_look(settings: Settings) -> dict[str, str]:
    host = settings.stack_host
    return {
        "MLflow UI": f"http://{host}:{settings.mlflow_port}",
        "Prometheus": f"http://{host}:{settings.prometheus_port}",
        "Discord simulator (posts)": f"http://{host}:{settings.discord_sim_port}/",
        "STAC simulator (Sentinel-2)": f"http://{host}:{settings.stac_sim_port}/",
        "Operator console": f"http://{settings.console_host}:{settings.console_port}/"
                            + (f" (sign in with the secret in {demo_operator_secret_file(settings)})"
                               if demo_operator_secret_file(settings).is_file() else
                               " (sign in with your operator secret: emberwatch console-operator add NAME)"),
        "Triton": f"http://{host}:{settings.triton_http_port}/v2/models/wildfire",
        "logs": str(settings.state_dir / "logs"),
    }

