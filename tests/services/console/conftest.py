"""A real Tansu broker, a tile store with real PNGs, a fake Mapbox raster API, and the console as its
own process (``emberwatch console``) on a free port of 127.0.0.1, stopped by process group after."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from emberwatch.common.config import Settings
from emberwatch.common.telemetry import free_port
from emberwatch.common.tile_store import TileStore
from emberwatch.contracts import FireObserved, TileReady
from emberwatch.contracts.envelope import Envelope
from emberwatch.messaging.broker import build_broker, client_options, publish_event
from emberwatch.operations.create_topics import create_topics
from tests.conftest import REPO, env_for, running_stack
from tests.support.process_group import stop_group
from emberwatch.security.console_operators import OperatorRegistry
from tests.support.serve_app import serve_in_thread

OPERATORS = ("alice", "bob", "carol", "dana")  # named operators, each with a secret made at run time
MAPBOX_TOKEN = "pk.mapbox-secret-42"


async def _publish(settings: Settings, events: list[Envelope]) -> None:
    broker = build_broker(settings, "console-test")
    await broker.start()
    try:
        for event in events:
            await publish_event(broker, event, service="console-test")
    finally:
        await broker.stop()


def run_async(make_coro):  # noqa: ANN001, ANN201
    """Run a coroutine to its end on a thread of its own: playwright's sync API keeps an event loop
    running on the test's thread, where ``asyncio.run`` is refused."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make_coro())).result()


def publish(settings: Settings, *events: Envelope) -> None:
    run_async(lambda: _publish(settings, list(events)))


async def _read_all(settings: Settings, topic: str) -> list[bytes]:
    consumer = AIOKafkaConsumer(**client_options(settings), group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            await consumer._client.force_metadata_update()  # noqa: SLF001
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        values: list[bytes] = []
        deadline = time.monotonic() + 15
        async def behind() -> bool:
            return any([await consumer.position(tp) < ends[tp] for tp in tps])

        while await behind():
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read {topic} to its end")
            for records in (await consumer.getmany(timeout_ms=500)).values():
                values.extend(r.value or b"" for r in records)
        return values
    finally:
        await consumer.stop()


def read_all(settings: Settings, topic: str) -> list[bytes]:
    return run_async(lambda: _read_all(settings, topic))


def png(color: tuple[int, int, int], size: int = 64) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buf, format="PNG")
    return buf.getvalue()


def fire(key: str, change: str, *, agency: str = "bc", stage: str = "OC", hectares: float = 12.5,
         lat: float = 50.0, lon: float = -120.0, at: str = "2026-07-01T12:00:00") -> FireObserved:
    return FireObserved.create(
        producer="console-test", fire_key=key, source="cwfis-csv", agency=agency, name=f"Fire {key}",
        lat=lat, lon=lon, start_date=datetime(2026, 6, 28, tzinfo=UTC), hectares=hectares,
        stage_of_control=stage, change=change, snapshot_at=datetime.fromisoformat(at).replace(tzinfo=UTC))


def tile(store: TileStore, data: bytes, fire_key: str, label: str) -> TileReady:
    stored = store.put(data, "png")
    return TileReady.create(producer="console-test", tile_id=stored.tile_id, uri=stored.uri, lat=50.0, lon=-120.0,
                            zoom=15, size_px=64, label=label, split="train", fire_key=fire_key,
                            provider="mapbox-static")


@dataclass
class FakeMapbox:
    url: str
    tokens: list[str | None] = field(default_factory=list)


def make_operators(path: Path, names: tuple[str, ...] = OPERATORS) -> dict[str, str]:
    """An operators file with ``names``, as ``emberwatch console-operator add`` writes it: name -> secret."""
    registry = OperatorRegistry(path)
    return {name: registry.add(name) for name in names}


@dataclass
class RunningConsole:
    url: str
    settings: Settings
    log_path: Path
    tiles: dict[str, TileReady]
    mapbox: FakeMapbox
    secrets: dict[str, str]  # operator -> secret
    operators_file: Path
    env: dict[str, str]  # what it was started with, beside env_for(settings)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


def _fake_mapbox_app(seen: list[str | None]) -> Starlette:
    jpeg = io.BytesIO()
    Image.new("RGB", (512, 512), (40, 90, 40)).save(jpeg, format="JPEG")

    async def raster(request: Request) -> Response:
        seen.append(request.query_params.get("access_token"))
        return Response(jpeg.getvalue(), media_type="image/jpeg")

    return Starlette(routes=[Route("/v4/{tileset}/{z:int}/{x:int}/{tail}", raster)])


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningConsole]:
    base = tmp_path_factory.mktemp("console")
    with running_stack(base / "stack", "kafka") as settings:
        run_async(lambda: create_topics(settings))
        store = TileStore(settings.tile_root)  # the console reads tiles only from its configured store
        tiles = {
            "fire": tile(store, png((200, 60, 20)), "A", "wildfire"),
            "free1": tile(store, png((30, 110, 40)), "A", "nowildfire"),
            "free2": tile(store, png((90, 90, 90)), "A", "nowildfire"),
        }
        publish(settings,
                fire("A", "new", agency="bc", stage="OC"),
                fire("B", "new", agency="ab", stage="BH", lat=54.0, lon=-114.0),
                fire("B", "updated", agency="ab", stage="UC", lat=54.0, lon=-114.0, hectares=40.0,
                     at="2026-07-01T18:00:00"),
                fire("C", "new", agency="on", lat=49.0, lon=-86.0),
                fire("C", "out", agency="on", stage="EX", lat=49.0, lon=-86.0, at="2026-07-02T00:00:00"),
                *tiles.values())
        seen: list[str | None] = []
        with serve_in_thread(_fake_mapbox_app(seen), "fake mapbox") as mapbox_url:
            secrets = make_operators(base / "operators")
            env = {"EMBERWATCH_CONSOLE_OPERATORS_FILE": str(base / "operators"), "EMBERWATCH_MAPBOX_API_URL": mapbox_url,
                   "EMBERWATCH_MAPBOX_TOKEN": MAPBOX_TOKEN, "EMBERWATCH_LOG_LEVEL": "DEBUG",
                   # no gatekeeper and no Triton listen here (the stack is the broker alone)
                   "EMBERWATCH_CONSOLE_GATEKEEPER_METRICS_URL": f"http://127.0.0.1:{free_port()}/metrics"}
            with console_process(settings, base / "console.log", env, fires=3, tiles=3) as url:
                yield RunningConsole(url, settings, base / "console.log", tiles, FakeMapbox(mapbox_url, seen),
                                     secrets, base / "operators", env)


@contextlib.contextmanager
def console_process(settings: Settings, log_path: Path, extra_env: dict[str, str], *,
                    fires: int = 0, tiles: int = 0) -> Iterator[str]:
    """``emberwatch console`` on a free port of 127.0.0.1 until the block ends, then SIGTERM to its
    process group: it must stop gracefully within 15 s. Yields its URL once it has read ``fires``
    fires and ``tiles`` tiles."""
    port = free_port()
    env = env_for(settings) | {"EMBERWATCH_CONSOLE_PORT": str(port)} | extra_env
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-c", "from emberwatch.cli.main import app; app()", "console"],
            cwd=REPO, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(url, proc, log_path, fires=fires, tiles=tiles)
            yield url
        finally:
            if not stop_group(proc, 15):
                raise AssertionError("the console did not stop within 15 s of SIGTERM")
            # uvicorn re-raises the signal once it has shut down gracefully: -15 or 0
            assert proc.returncode in (0, -signal.SIGTERM), f"the console exited {proc.returncode}"
            assert '"console stopped"' in log_path.read_text(), "no graceful shutdown on SIGTERM"


CHROMIUM = Path("/usr/bin/chromium")


def check_screenshot(name: str, data: bytes, folder: Path, *, copy_to_docs: bool = True) -> None:
    """A page's screenshot is 1280 px wide, not blank, and kept; with EMBERWATCH_DOCS_SCREENSHOTS=<folder>
    it is also written there (how docs/images gets them)."""
    import shutil

    image = Image.open(io.BytesIO(data)).convert("RGB")
    assert image.width == 1280 and image.height >= 800, (name, image.size)
    colours = image.resize((160, 100)).getcolors(maxcolors=100_000)
    assert colours is not None and len(colours) > 20, f"{name} looks blank"
    (folder / name).write_bytes(data)
    if copy_to_docs and (target := os.environ.get("EMBERWATCH_DOCS_SCREENSHOTS")):
        shutil.copy(folder / name, Path(target) / name)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's chromium, headless, driven by playwright (no browser download)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():  # scripts/setup installs it; say so loudly instead of passing quietly
        pytest.fail(f"{CHROMIUM} is missing: run scripts/setup (apt-get install chromium)", pytrace=False)
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                              args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            yield b
        finally:
            b.close()


@contextlib.contextmanager
def browser_page(browser, url: str, *, height: int = 860) -> Iterator[object]:  # noqa: ANN001
    """A page in a fresh browser context on ``url`` (1280 px wide), closed however the block ends."""
    context = browser.new_context(base_url=url, viewport={"width": 1280, "height": height})
    try:
        yield context.new_page()
    finally:
        context.close()


def sign_in(page, secrets: dict[str, str], name: str = "alice") -> None:  # noqa: ANN001
    """Sign in through the page's form with ``name``'s secret (the secret names the operator)."""
    page.fill("#signin-secret", secrets[name])
    page.click("#signin-form button")
    page.wait_for_selector(f"#session:has-text('signed in as {name}')")




def _wait_ready(url: str, proc: subprocess.Popen, log_path: Path, *, fires: int, tiles: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the console exited ({proc.returncode}):\n{log_path.read_text()[-3000:]}")
        try:
            r = httpx.get(f"{url}/healthz", timeout=2)
            if r.status_code == 200 and r.json()["fires"] >= fires and r.json()["tiles"] >= tiles:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the console did not catch up with the streams:\n{log_path.read_text()[-3000:]}")
