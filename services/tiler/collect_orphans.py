"""Tiles stored but never announced, removed from the tile store after a grace period.

A tile is stored before it is announced (``tiles.ready.v1``), and some are never announced: a fire
became known near a negative after its image was fetched, a replica died between the store and the
publish, or the publish failed and the redelivered fire got different imagery. Nobody reads such a
tile (no event names it), but it stays in the store for good. Every
``EMBERWATCH_TILER_ORPHAN_COLLECT_INTERVAL_S`` one tiler replica lists the store and deletes the tiles
that no announcement names (the shared ``tiler_emitted`` index) and that are older than
``EMBERWATCH_TILER_ORPHAN_GRACE_S``.

Never an announced tile: the deletions run under the ``tiler-announce`` exclusive section, the one
every announcement holds, and each candidate is checked against the index again inside it; an
announcement stores its bytes again (a no-op when they are there) inside the same section before
it publishes. A tile written by a replica that is still working on its fire is young: the grace
period covers a redelivered batch too (default one day).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from emberwatch.common.coordination import ExclusiveSection
from emberwatch.common.tile_store import StoredObject, TileWriter
from services.tiler.metrics import ORPHAN_BYTES_DELETED, ORPHAN_TILES_DELETED
from services.tiler.state import EmittedIndex

log = logging.getLogger(__name__)

DELETE_CHUNK = 200  # deletions per hold of the announce section: announcements wait at most this long


@dataclass(frozen=True)
class CollectionReport:
    stored: int  # tiles in the store
    announced: int  # of those, named by an announcement
    too_young: int  # never announced, but within the grace period
    deleted: int
    bytes_deleted: int


def find_orphans(stored: list[StoredObject], announced: set[str], *, older_than: float) -> tuple[
        list[StoredObject], int]:
    """The stored tiles no announcement names and last written before ``older_than`` (epoch s), and
    how many unannounced tiles are younger."""
    unannounced = [t for t in stored if t.tile_id not in announced]
    old = [t for t in unannounced if t.modified_at < older_than]
    return old, len(unannounced) - len(old)


async def collect_orphans(store: TileWriter, emitted: EmittedIndex, announce: ExclusiveSection, *,
                          grace_s: float, now: float | None = None) -> CollectionReport:
    """One collection: list the store, delete the old tiles never announced (see the module)."""
    started = time.time() if now is None else now
    stored = await asyncio.to_thread(lambda: list(store.list_stored()))
    announced = await asyncio.to_thread(emitted.tile_ids)
    orphans, too_young = find_orphans(stored, announced, older_than=started - grace_s)
    deleted = freed = 0
    for start in range(0, len(orphans), DELETE_CHUNK):
        chunk = orphans[start:start + DELETE_CHUNK]
        async with announce.held():
            still = await asyncio.to_thread(emitted.tile_ids, [t.tile_id for t in chunk])
            for tile in chunk:
                if tile.tile_id in still:  # announced since the listing
                    continue
                await asyncio.to_thread(store.delete, tile.tile_id, tile.ext)
                deleted += 1
                freed += tile.size
    ORPHAN_TILES_DELETED.inc(deleted)
    ORPHAN_BYTES_DELETED.inc(freed)
    report = CollectionReport(len(stored), len(stored) - len(orphans) - too_young, too_young, deleted, freed)
    log.info("tiles never announced collected", extra=vars(report) | {"grace_s": grace_s})
    return report


async def collect_orphans_forever(store: TileWriter, emitted: EmittedIndex, announce: ExclusiveSection, *,
                                  interval_s: float, grace_s: float, stop: asyncio.Event) -> None:
    """``collect_orphans`` every ``interval_s`` until ``stop``; a failed round is logged and retried
    at the next one (the store or the database may be down for a while)."""
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval_s)
            return
        except TimeoutError:
            pass
        try:
            await collect_orphans(store, emitted, announce, grace_s=grace_s)
        except Exception as exc:  # noqa: BLE001 - housekeeping never stops the tiler
            log.warning("collecting tiles never announced failed; next try in one interval",
                        extra={"error": f"{type(exc).__name__}: {exc}", "interval_s": interval_s})
