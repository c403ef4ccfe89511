"""Tiles stored but never announced are deleted after the grace period, in a local directory and in a
real S3 API (moto's server), with the coordination database on SQLite and on PostgreSQL; announced
tiles, young tiles and files that are not tiles are kept, and a tile announced while a collection
runs is never deleted."""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import pytest

from emberwatch.common.coordination import ExclusiveSection, open_coordination
from emberwatch.common.tile_store import TileStore, open_tile_store
from services.tiler.collect_orphans import collect_orphans, collect_orphans_forever
from services.tiler.metrics import ORPHAN_TILES_DELETED
from services.tiler.state import EmittedIndex
from tests.common.test_tile_store_s3 import admin, keys_in, s3_settings

pytestmark = pytest.mark.timeout(120)
DAY = 86400.0


def image(n: int) -> bytes:
    return f"tile image {n} {uuid.uuid4()}".encode()


async def test_only_old_tiles_no_announcement_names_are_deleted(tmp_path, coordination):
    engine = open_coordination(coordination)
    emitted, section = EmittedIndex(engine), ExclusiveSection(engine, f"tiler-announce-{uuid.uuid4().hex[:6]}")
    store = TileStore(tmp_path / "tiles")
    announced, old_orphan, young_orphan = (store.put(image(i), "jpg") for i in range(3))
    emitted.add("f1", "fire", announced.tile_id)
    two_days_ago = time.time() - 2 * DAY
    for tile in (announced, old_orphan):
        os.utime(tile.path, (two_days_ago, two_days_ago))
    partial = old_orphan.path.parent / f".{old_orphan.path.name}.tmp-1"  # a write in progress
    partial.write_bytes(b"half")
    os.utime(partial, (two_days_ago, two_days_ago))
    before = ORPHAN_TILES_DELETED._value.get()
    size = old_orphan.path.stat().st_size

    report = await collect_orphans(store, emitted, section, grace_s=DAY)

    assert (report.stored, report.announced, report.too_young, report.deleted) == (3, 1, 1, 1)
    assert report.bytes_deleted == size
    assert not old_orphan.path.exists()
    assert announced.path.exists() and young_orphan.path.exists() and partial.exists()
    assert ORPHAN_TILES_DELETED._value.get() == before + 1
    # nothing left to do: a second collection deletes nothing
    assert (await collect_orphans(store, emitted, section, grace_s=DAY)).deleted == 0


async def test_a_tile_announced_during_the_collection_is_kept(tmp_path):
    engine = open_coordination(f"sqlite:///{tmp_path / 'coordination.sqlite3'}")
    section = ExclusiveSection(engine, "tiler-announce")
    store = TileStore(tmp_path / "tiles")
    tiles = [store.put(image(i), "jpg") for i in range(4)]

    class AnnouncedMeanwhile(EmittedIndex):
        """The real index; a replica announces tile 0 right after the collection listed the index."""

        def tile_ids(self, among=None):
            found = super().tile_ids(among)
            if among is None:
                self.add("f0", "fire", tiles[0].tile_id)
            return found

    report = await collect_orphans(store, AnnouncedMeanwhile(engine), section, grace_s=DAY, now=time.time() + 2 * DAY)
    assert report.deleted == 3
    assert [t.path.exists() for t in tiles] == [True, False, False, False]


async def test_orphans_in_a_bucket_are_deleted_and_announced_ones_kept(tmp_path, s3_endpoint):
    bucket = f"tiles-{uuid.uuid4().hex[:12]}"
    admin(s3_endpoint).create_bucket(Bucket=bucket)
    admin(s3_endpoint).put_object(Bucket=bucket, Key="emberwatch/readme.txt", Body=b"not a tile")
    settings = s3_settings(s3_endpoint, tile_store_url=f"s3://{bucket}/emberwatch")
    store = open_tile_store(settings, tmp_path / "unused")
    engine = open_coordination(f"sqlite:///{tmp_path / 'coordination.sqlite3'}")
    emitted = EmittedIndex(engine)
    kept, orphan = store.put(image(1), "png"), store.put(image(2), "png")
    emitted.add("f1", "neg-0", kept.tile_id)

    young = await collect_orphans(store, emitted, ExclusiveSection(engine, "a"), grace_s=DAY)
    assert (young.stored, young.too_young, young.deleted) == (2, 1, 0)  # just written: within the grace
    later = await collect_orphans(store, emitted, ExclusiveSection(engine, "a"), grace_s=DAY,
                                  now=time.time() + 2 * DAY)
    assert (later.stored, later.announced, later.deleted) == (2, 1, 1)
    assert later.bytes_deleted == len(image(2))
    key = kept.uri.removeprefix(f"s3://{bucket}/")
    assert keys_in(s3_endpoint, bucket) == sorted([key, "emberwatch/readme.txt"])
    # an announcement of the deleted tile stores it again (the tiler's put under the section)
    assert store.put(orphan_bytes := image(3), "png").created
    assert store.put(orphan_bytes, "png").created is False


async def test_the_collection_loop_runs_each_interval_survives_a_failure_and_stops(tmp_path):
    engine = open_coordination(f"sqlite:///{tmp_path / 'coordination.sqlite3'}")
    store = TileStore(tmp_path / "tiles")
    orphan = store.put(image(1), "jpg")
    os.utime(orphan.path, (time.time() - 2 * DAY,) * 2)
    rounds = []

    class Flaky(EmittedIndex):
        def tile_ids(self, among=None):
            if among is None:
                rounds.append(time.monotonic())
                if len(rounds) == 1:
                    raise ConnectionError("database down")
            return super().tile_ids(among)

    stop = asyncio.Event()
    task = asyncio.create_task(collect_orphans_forever(store, Flaky(engine), ExclusiveSection(engine, "a"),
                                                       interval_s=0.1, grace_s=DAY, stop=stop))
    deadline = time.monotonic() + 20
    while orphan.path.exists() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert len(rounds) >= 2 and not orphan.path.exists()
