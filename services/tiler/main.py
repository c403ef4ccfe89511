"""Wiring: settings → Mapbox client → fetcher, store, shared state → handler → ``handlers.routes``; with
Sentinel-2 on, its line beside them and its timer started with the app."""

from __future__ import annotations

import asyncio

from faststream import FastStream
from faststream.kafka import KafkaBroker

from emberwatch.common.config import Settings, narrow
from emberwatch.common.coordination import coordination_url, open_coordination
from emberwatch.common.service import run_service
from emberwatch.common.tile_store import open_tile_store
from emberwatch.contracts import FireObserved
from emberwatch.messaging.broker import build_broker, publisher
from emberwatch.messaging.consumer import Handler
from emberwatch.messaging.subscription import BulkHandler, Delivery, subscribe_routes
from services.tiler.collect_orphans import collect_orphans_forever
from services.tiler.fetch_tile import TileFetcher
from services.tiler.handlers import Handlers, alert_publisher, route, routes
from services.tiler.mapbox_client import MapboxClient, TokenSource
from services.tiler.models import Publish
from services.tiler.pin_split import pin_split, split_config
from services.tiler.request_budget import RequestBudget
from services.tiler.sentinel2_line import build_sentinel2_line
from services.tiler.settings import SERVICE, TilerSettings
from services.tiler.settings_view import TilerView
from services.tiler.state import EmittedIndex, FireRegistry, RelabelLog, import_json_lines


def build_tiler(s: TilerSettings, publish: Publish) -> tuple[Handlers, MapboxClient]:
    """The handler and its Mapbox client; ``publish`` sends an event (tiles, relabels and alerts).

    Refuses to start (:class:`SplitSettingsChanged`) when the split settings differ from those
    pinned in the coordination database."""
    engine = open_coordination(coordination_url(s))  # shared by every replica
    pin_split(engine, split_config(s.tiler_split_cell_deg, s.tiler_split_val, s.tiler_split_test),
              old_file=s.tiler_state / "split.json")
    token = s.mapbox_token.get_secret_value() if s.mapbox_token else None
    budget = None
    if s.tiler_mapbox_requests_per_minute > 0:
        budget = RequestBudget(engine, per_minute=s.tiler_mapbox_requests_per_minute, burst=s.tiler_mapbox_burst)
    view = TilerView(s)
    client = MapboxClient(view, TokenSource(token, s.tiler_token_file), alert_publisher(publish), budget)
    import_json_lines(engine, s.tiler_state)  # an older tiler's files, once
    tiler = Handlers(s, TileFetcher(client, view), open_tile_store(s, s.tile_root), FireRegistry(engine),
                  EmittedIndex(engine), publish, RelabelLog(engine))
    if s.tiler_sentinel2:
        tiler.sentinel2 = build_sentinel2_line(s, engine, tiler.store, tiler.emitted, tiler.announce_section,
                                               publish, tiler.split_of)
    return tiler, client


def consume(broker: KafkaBroker, s: TilerSettings, topic: str, handle_one: Handler[FireObserved], *, group_id: str,
            handle_many: BulkHandler[FireObserved] | None = None) -> None:
    """Subscribe the tiler's handlers to ``topic`` as ``handlers.route`` says (``topic`` and the
    group are the test's or the benchmark's where they pass their own)."""
    r = route(s, handle_one, handle_many, topic)
    subscribe_routes(broker, (r,), Delivery.from_settings(s, service=SERVICE, group_id=group_id))


def build_app(settings: Settings) -> FastStream:
    s = narrow(settings, TilerSettings)
    broker = build_broker(s, SERVICE)

    tiler, client = build_tiler(s, publisher(broker, SERVICE))
    subscribe_routes(broker, routes(tiler), Delivery.from_settings(s, service=SERVICE, group_id=s.tiler_group_id))
    app = FastStream(broker)
    stop, collecting = asyncio.Event(), []

    @app.after_startup
    async def _collect_orphans() -> None:
        if s.tiler_orphan_collect_interval_s > 0:
            collecting.append(asyncio.create_task(collect_orphans_forever(
                tiler.store, tiler.emitted, tiler.announce_section, interval_s=s.tiler_orphan_collect_interval_s,
                grace_s=s.tiler_orphan_grace_s, stop=stop), name="tiler-orphan-collection"))
        if tiler.sentinel2 is not None:
            collecting.append(asyncio.create_task(tiler.sentinel2.run_forever(stop), name="tiler-sentinel2"))

    @app.on_shutdown
    async def _stop_collecting() -> None:
        stop.set()
        for task in collecting:
            await task

    app.after_shutdown(client.aclose)
    return app


def main() -> None:
    run_service(SERVICE, build_app)
