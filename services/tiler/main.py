"""Wiring: settings → Mapbox client → fetcher, store, shared state → handler → the shared consumer."""

from __future__ import annotations

import asyncio

from faststream import FastStream

from emberwatch.common.config import Settings, narrow
from emberwatch.common.coordination import coordination_url, open_coordination
from emberwatch.common.service import run_service
from emberwatch.common.tile_store import open_tile_store
from emberwatch.contracts import FireObserved
from emberwatch.messaging.batch_consumer import subscribe_batch
from emberwatch.messaging.broker import build_broker, publisher
from emberwatch.messaging.bulk_consumer import subscribe_bulk
from emberwatch.messaging.consumer import consumer_options, subscribe
from services.tiler.collect_orphans import collect_orphans_forever
from services.tiler.fetch_tile import FetchConfig, TileFetcher
from services.tiler.handlers import SERVICE, Publish, Tiler, alert_publisher
from services.tiler.mapbox_client import ClientConfig, MapboxClient, TokenSource
from services.tiler.pin_split import pin_split, split_config
from services.tiler.request_budget import RequestBudget
from services.tiler.settings import TilerSettings
from services.tiler.state import EmittedIndex, FireRegistry, RelabelLog, import_json_lines


def client_config(s: TilerSettings) -> ClientConfig:
    return ClientConfig(
        base_url=s.mapbox_api_url, max_in_flight=s.tiler_max_in_flight, timeout_s=s.tiler_request_timeout_s,
        retry_attempts=s.tiler_retry_attempts, retry_backoff_s=s.tiler_retry_backoff_s,
        retry_backoff_max_s=s.tiler_retry_backoff_max_s, rate_limit_max_wait_s=s.tiler_rate_limit_max_wait_s,
        outage_max_wait_s=s.tiler_outage_max_wait_s, outage_backoff_max_s=s.tiler_outage_backoff_max_s,
        auth_recheck_s=s.tiler_auth_recheck_s, auth_probe_s=s.tiler_auth_probe_s)


def fetch_config(s: TilerSettings) -> FetchConfig:
    return FetchConfig(mode=s.tiler_mode, zoom=s.tiler_zoom, size_px=s.tiler_size_px, style=s.tiler_style,
                       tileset=s.tiler_tileset, raster_format=s.tiler_raster_format,
                       image_attempts=s.tiler_image_attempts, blank_std=s.tiler_blank_std,
                       context_zoom=s.tiler_context_zoom, context_size_px=s.tiler_context_size_px)


def build_tiler(s: TilerSettings, publish: Publish) -> tuple[Tiler, MapboxClient]:
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
    client = MapboxClient(client_config(s), TokenSource(token, s.tiler_token_file), alert_publisher(publish),
                          budget)
    import_json_lines(engine, s.tiler_state)  # an older tiler's files, once
    tiler = Tiler(s, TileFetcher(client, fetch_config(s)), open_tile_store(s, s.tile_root), FireRegistry(engine),
                  EmittedIndex(engine), publish, RelabelLog(engine))
    return tiler, client


def consume(broker, s: TilerSettings, topic: str, handle_one, *, group_id: str, handle_many=None) -> None:
    """With ``handle_many``: batches of up to ``kafka_batch_max_records`` fires, each handled by
    ``handle_many`` (one transaction for the whole batch's locations, its new fires tiled
    ``tiler_batch_size`` at a time; ``subscribe_bulk``), with ``handle_one`` as the per-fire
    fallback. Without it, batches of ``tiler_batch_size`` fires handled concurrently one by one
    (``subscribe_batch``); a batch size of 1 is the shared ``subscribe``."""
    common = dict(service=SERVICE, group_id=group_id,
                  **{**consumer_options(s), "max_records": s.tiler_batch_size})
    if s.tiler_batch_size > 1 and handle_many is not None:
        subscribe_bulk(broker, topic, FireObserved, handle_many, handle_one,
                       **{**common, "max_records": s.kafka_batch_max_records})
    elif s.tiler_batch_size > 1:
        subscribe_batch(broker, topic, FireObserved, handle_one, **common)
    else:
        subscribe(broker, topic, FireObserved, handle_one, **common)


def build_app(settings: Settings) -> FastStream:
    s = narrow(settings, TilerSettings)
    broker = build_broker(s, SERVICE)

    tiler, client = build_tiler(s, publisher(broker, SERVICE))
    consume(broker, s, FireObserved.TOPIC, tiler.on_fire, group_id=s.tiler_group_id, handle_many=tiler.on_fires)
    app = FastStream(broker)
    stop, collecting = asyncio.Event(), []

    @app.after_startup
    async def _collect_orphans() -> None:
        if s.tiler_orphan_collect_interval_s > 0:
            collecting.append(asyncio.create_task(collect_orphans_forever(
                tiler.store, tiler.emitted, tiler.announce_section, interval_s=s.tiler_orphan_collect_interval_s,
                grace_s=s.tiler_orphan_grace_s, stop=stop), name="tiler-orphan-collection"))

    @app.on_shutdown
    async def _stop_collecting() -> None:
        stop.set()
        for task in collecting:
            await task

    app.after_shutdown(client.aclose)
    return app


def main() -> None:
    run_service(SERVICE, build_app)
