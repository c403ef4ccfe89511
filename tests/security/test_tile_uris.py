"""Tiles only from the tile store: hostile tile URIs on tiles.ready.v1 are refused by every reader.

One real broker (Tansu), moto's S3 over HTTP as the configured store (a bucket and a prefix) beside the
local root, the real console as its own process, the real gatekeeper consumer (its handlers on the
broker, dead-lettering) and the trainer's real reader. Each hostile URI names a file, a host, a bucket
or a prefix where the bytes are there to be had (often the very bytes of the tile id, so only the place
is wrong): the console answers 404 with nothing of them, the gatekeeper sends the event to the DLQ with
the reason, the trainer's reader skips it, an HTTP server of ours gets no request, and the refusals are
counted by reason before anything is opened."""

from __future__ import annotations

import hashlib
import io
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import httpx
import pytest
from PIL import Image
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from emberwatch.common.config import Settings
from emberwatch.common.telemetry import free_port
from emberwatch.common.tile_store import TileStore
from emberwatch.contracts import TileReady
from emberwatch.operations.create_topics import create_topics
from services.trainer.models import TileRecord
from services.trainer.read_tiles import read_images
from tests.conftest import running_stack
from tests.messaging.helpers import read_all, unique, wait_for
from tests.services.console.conftest import console_process, publish, run_async
from tests.support.moto_s3 import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY

pytestmark = pytest.mark.timeout(300)
SECRET = "mapbox-secret-of-the-console-5f0c"  # the console's own secret file holds it


def png(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (24, 24), (seed % 256, 90, 40)).save(buf, format="PNG")
    return buf.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def event(tile_id: str, uri: str) -> TileReady:
    """A tiles.ready.v1 event with ``uri`` as it is: built valid, then the URI put in unchecked (as a
    hostile producer writes it)."""
    valid = TileReady.create(producer="attacker", tile_id=tile_id, uri=f"file:///x/{tile_id[:2]}/{tile_id}.png",
                             lat=50.0, lon=-120.0, zoom=15, size_px=24, label="wildfire", split="test",
                             fire_key="F", provider="p")
    return valid.model_copy(update={"uri": uri})


@dataclass
class Canary:
    """An HTTP server of ours that serves a tile's bytes to anyone and counts the requests."""

    url: str
    hits: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def canary() -> Iterator[Canary]:
    seen: list[str] = []
    body = png(1)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            seen.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Canary(f"http://127.0.0.1:{server.server_port}", seen)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@dataclass
class World:
    settings: Settings  # the broker, the state, the store (local root and S3 bucket/prefix)
    env: dict[str, str]  # the store's settings as a service's environment
    good: dict[str, TileReady]  # tiles in the store, announced properly
    contract: dict[str, TileReady]  # URIs the contract refuses (never valid events)
    reader: dict[str, tuple[TileReady, str]]  # valid-looking URIs the readers refuse, with the reason
    secrets_dir: Path
    canary: Canary

    @property
    def hostile(self) -> dict[str, TileReady]:
        return {**self.contract, **{k: e for k, (e, _) in self.reader.items()}}


def admin(endpoint: str):
    return boto3.session.Session().client("s3", endpoint_url=endpoint, region_name=REGION,
                                          aws_access_key_id="admin", aws_secret_access_key="admin")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, s3_endpoint: str, canary: Canary) -> Iterator[World]:
    base = tmp_path_factory.mktemp("tile-uris")
    bucket, other_bucket = f"tiles-{uuid.uuid4().hex[:10]}", f"other-{uuid.uuid4().hex[:10]}"
    s3 = admin(s3_endpoint)
    s3.create_bucket(Bucket=bucket), s3.create_bucket(Bucket=other_bucket)
    secrets_dir = base / "secrets"
    secrets_dir.mkdir()
    (secrets_dir / "EMBERWATCH_MAPBOX_TOKEN").write_text(SECRET)
    outside = base / "outside"  # beside the store: files with the right names and the right bytes
    with running_stack(base / "stack", "kafka") as stack:
        run_async(lambda: create_topics(stack))
        env = {"EMBERWATCH_TILE_STORE_URL": f"s3://{bucket}/tiles", "EMBERWATCH_S3_ENDPOINT_URL": s3_endpoint,
               "EMBERWATCH_S3_REGION": REGION, "EMBERWATCH_S3_ACCESS_KEY_ID": ACCESS_KEY_ID,
               "EMBERWATCH_S3_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY, "EMBERWATCH_S3_MAX_ATTEMPTS": "1"}
        settings = Settings(**{**stack.model_dump(), "tile_store_url": f"s3://{bucket}/tiles",
                               "s3_endpoint_url": s3_endpoint, "s3_region": REGION,
                               "s3_access_key_id": ACCESS_KEY_ID, "s3_secret_access_key": SECRET_ACCESS_KEY,
                               "s3_max_attempts": 1})
        root = settings.tile_root
        local = TileStore(root)
        root_uri = root.resolve().as_uri()

        def placed(folder: Path, data: bytes) -> tuple[str, Path]:
            """``data`` at ``folder/<id[:2]>/<id>.png``: a tile's own name and bytes, outside the store."""
            path = folder / sha(data)[:2] / f"{sha(data)}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            return sha(data), path

        good_local = local.put(png(10), "png")
        good_s3 = f"tiles/{sha(png(11))[:2]}/{sha(png(11))}.png"  # the configured bucket and prefix
        s3.put_object(Bucket=bucket, Key=good_s3, Body=png(11))
        good = {"local": event(good_local.tile_id, good_local.uri),
                "s3": event(sha(png(11)), f"s3://{bucket}/{good_s3}")}

        contract: dict[str, TileReady] = {}
        for name, seed, uri in [
            ("etc_passwd", 20, "file:///etc/passwd"),
            ("console_secret", 21, (secrets_dir / "EMBERWATCH_MAPBOX_TOKEN").as_uri()),
            ("proc_environ", 22, "file:///proc/self/environ"),
            ("dotdot", 23, "{root}/../outside/{a}/{id}.png"),
            ("dotdot_encoded", 24, "{root}/%2e%2e/outside/{a}/{id}.png"),
            ("separator_encoded", 25, "{root}/..%2foutside/{a}/{id}.png"),
            ("other_host", 26, "file://evil{path}/{a}/{id}.png"),
            ("http", 27, "{canary}/{a}/{id}.png"),
            ("https", 28, "https://127.0.0.1:{port}/{a}/{id}.png"),
            ("query", 29, "{root}/{a}/{id}.png?x=1"),
        ]:
            tile_id, _ = placed(outside, png(seed))
            contract[name] = event(tile_id, uri.format(
                root=root_uri, a=tile_id[:2], id=tile_id, path=str(outside), canary=canary.url,
                port=canary.url.rsplit(":", 1)[1]))

        reader: dict[str, tuple[TileReady, str]] = {}
        tile_id, path = placed(outside, png(40))  # the right name and bytes, in another directory
        reader["other_directory"] = (event(tile_id, path.as_uri()), "outside_store")
        tile_id = sha(png(41))  # the store's own place, a symlink to the console's secret file
        link = local.path_for(tile_id, "png")
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(secrets_dir / "EMBERWATCH_MAPBOX_TOKEN")
        reader["symlink_to_secret"] = (event(tile_id, link.as_uri()), "symlink")
        tile_id = sha(png(42))  # /proc/self/environ, where Kubernetes puts a pod's secrets
        link = local.path_for(tile_id, "png")
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to("/proc/self/environ")
        reader["symlink_to_environ"] = (event(tile_id, link.as_uri()), "symlink")
        escaped = base / "escaped"  # a shard directory of the store that is a symlink out of it
        tile_id, _ = placed(escaped, png(43))
        (root / tile_id[:2]).symlink_to(escaped / tile_id[:2], target_is_directory=True)
        reader["symlinked_shard"] = (event(tile_id, local.path_for(tile_id, "png").as_uri()), "symlink")
        tile_id = sha(png(44))  # the store's place of the tile, other bytes in it
        swapped = local.path_for(tile_id, "png")
        swapped.parent.mkdir(parents=True, exist_ok=True)
        swapped.write_bytes(png(45))
        reader["hash_mismatch"] = (event(tile_id, swapped.as_uri()), "hash_mismatch")
        tile_id = sha(png(46))  # the right key and bytes in another bucket
        s3.put_object(Bucket=other_bucket, Key=f"tiles/{tile_id[:2]}/{tile_id}.png", Body=png(46))
        reader["other_bucket"] = (event(tile_id, f"s3://{other_bucket}/tiles/{tile_id[:2]}/{tile_id}.png"),
                                  "outside_store")
        tile_id = sha(png(47))  # the store's bucket, another prefix
        s3.put_object(Bucket=bucket, Key=f"private/{tile_id[:2]}/{tile_id}.png", Body=png(47))
        reader["other_prefix"] = (event(tile_id, f"s3://{bucket}/private/{tile_id[:2]}/{tile_id}.png"),
                                  "outside_store")

        for e in contract.values():  # none of them is a valid event
            with pytest.raises(ValueError):
                TileReady.model_validate(e.model_dump())
        publish(stack, *contract.values(), *(e for e, _ in reader.values()), *good.values())
        yield World(settings, env, good, contract, reader, secrets_dir, canary)


def metric(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return 0.0


def test_the_console_serves_store_tiles_and_refuses_every_other_uri(world: World, tmp_path: Path) -> None:
    env = world.env | {"EMBERWATCH_SECRETS_DIR": str(world.secrets_dir),
                       "EMBERWATCH_CONSOLE_GATEKEEPER_METRICS_URL": f"http://127.0.0.1:{free_port()}/metrics"}
    announced = len(world.good) + len(world.reader)
    with console_process(world.settings, tmp_path / "console.log", env, tiles=announced) as url:
        def skipped() -> float:
            return metric(httpx.get(f"{url}/metrics", timeout=5).text, "emberwatch_messages_consumed_total",
                          service="console", topic=TileReady.TOPIC, outcome="invalid")

        run_async(lambda: wait_for(lambda: skipped() >= len(world.contract), timeout_s=30))
        for name, tile in world.good.items():
            r = httpx.get(f"{url}/tiles/{tile.tile_id}", timeout=10)
            assert r.status_code == 200, (name, r.text)
            assert sha(r.content) == tile.tile_id and "immutable" in r.headers["cache-control"]
        for name, tile in world.hostile.items():
            r = httpx.get(f"{url}/tiles/{tile.tile_id}", timeout=10)
            assert r.status_code == 404, (name, r.status_code, r.text)
            assert r.headers["cache-control"] == "no-store", name  # an error is never cached
            assert SECRET not in r.text and "PATH=" not in r.text and "root:" not in r.text, name
        text = httpx.get(f"{url}/metrics", timeout=5).text
        for reason in {reason for _, reason in world.reader.values()}:
            expected = sum(1 for _, r in world.reader.values() if r == reason)
            assert metric(text, "emberwatch_tiles_refused_total", reason=reason) >= expected, reason
    assert world.canary.hits == []  # no request ever left for the URI an event named
    assert SECRET not in (tmp_path / "console.log").read_text()


async def test_the_gatekeeper_dead_letters_every_uri_outside_the_store(world: World, tmp_path: Path) -> None:
    from services.gatekeeper.gatekeeper import Gatekeeper
    from services.gatekeeper.main import build_app
    from services.gatekeeper.settings import GatekeeperSettings
    from services.gatekeeper.shadow_state import Shadow

    s = GatekeeperSettings(**{
        **world.settings.model_dump(), "state_dir": tmp_path / "gk-state", "model_name": "m",
        "tiler_tile_root": world.settings.tile_root, "triton_url": "127.0.0.1:9",  # nothing listens there
        "mlflow_tracking_uri": "http://127.0.0.1:9", "triton_model_repository": tmp_path / "repo",
        "gatekeeper_group_id": unique("gatekeeper"), "gatekeeper_triton_wait_s": 0.5, "kafka_max_attempts": 1})
    gk = Gatekeeper(s)
    # a challenger in shadow, so live tiles are read; the store's good tiles count as its training
    # tiles, so they are set aside before any read (no Triton here)
    gk.shadows.save(Shadow(model_name="m", candidate_version="2", champion_version="1", run_id="r"))
    fitted = tmp_path / "lineage.json"
    fitted.write_text(json.dumps([{"tile_id": t.tile_id, "split": "train"} for t in world.good.values()]))
    gk.lineage.remember("1", None), gk.lineage.remember("2", fitted)
    refused_before = {r: REGISTRY.get_sample_value("emberwatch_tiles_refused_total", {"reason": r}) or 0.0
                      for _, r in world.reader.values()}
    broker = build_app(s, gatekeeper=gk).broker
    await broker.start()
    try:
        dlq = await read_all(s.kafka_bootstrap_servers, f"{TileReady.TOPIC}.dlq", len(world.hostile), timeout_s=120)
    finally:
        await broker.stop()
    by_tile = {json.loads(r.value)["tile_id"]: dict(r.headers) for r in dlq}
    assert set(by_tile) == {t.tile_id for t in world.hostile.values()}
    for name, tile in world.contract.items():
        assert by_tile[tile.tile_id]["x-dlq-reason"] == b"validation", name
        assert b"tile uri" in by_tile[tile.tile_id]["x-dlq-error"], name
    for name, (tile, reason) in world.reader.items():
        headers = by_tile[tile.tile_id]
        assert headers["x-dlq-reason"] == b"permanent", name
        assert headers["x-dlq-error"].decode(), name
    for reason in set(refused_before):
        expected = sum(1 for _, r in world.reader.values() if r == reason)
        after = REGISTRY.get_sample_value("emberwatch_tiles_refused_total", {"reason": reason}) or 0.0
        assert after - refused_before[reason] >= expected, reason
    assert gk.shadows.load().pairs == []  # nothing was scored
    assert world.canary.hits == []


def test_the_trainers_reader_skips_every_uri_outside_the_store(world: World) -> None:
    from emberwatch.common.tile_store import TileRefused

    records = [TileRecord(tile_id=t.tile_id, label="wildfire", split="train", uri=t.uri)
               for t in [*world.hostile.values(), *world.good.values()]]
    ok, images, bad = read_images(records, 24, world.settings)
    assert {r.tile_id for r in ok} == {t.tile_id for t in world.good.values()}  # the store's tiles are read
    assert images.shape == (len(world.good), 24, 24, 3)
    assert {t for t, _ in bad} == {t.tile_id for t in world.hostile.values()}
    refusals = tuple(cls.__name__ for cls in (TileRefused, *TileRefused.__subclasses__()))
    assert all(any(name in why for name in refusals) for _, why in bad), bad
    assert all(SECRET not in why for _, why in bad)
    assert world.canary.hits == []
