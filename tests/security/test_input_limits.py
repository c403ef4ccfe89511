"""Size limits on what comes from outside: the feed body is capped while it streams (refused unparsed,
with an alert, the last good snapshot kept), each text field of a feed row is capped and made plain
(NFC, no control or bidi formatting characters; HTML kept as text), rows refused are counted by
reason; images are refused before decoding when their bytes or their declared pixels are over the
limit (a decompression bomb), in the decoder the Triton model and the trainer use and in the tiler's
validation."""

from __future__ import annotations

import gzip
import struct
import unicodedata
import zlib
from contextlib import contextmanager

import httpx
import numpy as np
import pytest
from PIL import Image
from prometheus_client import REGISTRY
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from emberwatch.ml.images import MAX_IMAGE_PIXELS, ImageTooLarge, UnreadableImage, decode_image
from services.ingestor.fetch_feed import FetchError, RetryPolicy, fetch
from services.ingestor.models import SOURCE_CSV
from services.ingestor.parse_feed import parse
from services.tiler.validate_image import ImageRejected, validate_image
from tests.services.ingestor.helpers import settings_for
from tests.services.ingestor.test_ingestor import ingestor_for, sim_config
from tests.simulators.cwfis.serve import running_sim
from tests.support.serve_app import serve_in_thread

pytestmark = pytest.mark.timeout(120)

HEADER = "agency, firename, lat, lon, startdate, hectares, stage_of_control, timezone, response_type\n"


def metric(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@contextmanager
def serving(body: bytes, headers: dict[str, str] | None = None):
    """One URL on 127.0.0.1 (a free port) that answers ``body`` with ``headers``; counts requests."""
    hits = []

    async def feed(request):
        hits.append(request.url.path)
        return Response(body, media_type="text/csv", headers=headers or {})

    with serve_in_thread(Starlette(routes=[Route("/feed.csv", feed)]), "feed") as url:
        yield f"{url}/feed.csv", hits


# --- the feed's size --------------------------------------------------------------------------------

async def test_an_oversized_feed_is_refused_unparsed_and_alerts(kafka_settings, tmp_path):
    with running_sim(sim_config(3201)) as sim:
        settings = settings_for(kafka_settings, tmp_path, csv_url=sim.csv_url)
        async with ingestor_for(settings) as ing:
            good = await ing.poll_once()
            assert good.outcomes[SOURCE_CSV].outcome == "ok" and good.events
            tracked = dict(ing.state.tracked)
        rows_before = metric("emberwatch_ingestor_rows_total", source=SOURCE_CSV, outcome="accepted")
        small = settings.model_copy(update={"ingestor_max_feed_bytes": 1024})  # the feed is bigger
        sim.admin("clock", advance_hours=24)
        async with ingestor_for(small) as ing:
            bad = await ing.poll_once()
            o = bad.outcomes[SOURCE_CSV]
            assert (o.outcome, o.reason) == ("too_large", "too_large")
            assert "over the cap of 1,024 bytes" in o.error and "not parsed" in o.error
            assert bad.events == [] and ing.state.tracked == tracked  # nothing marked out, nothing new
            assert [a.alert for a in bad.alerts] == ["feed_too_large"]
            assert bad.alerts[0].details["reason"] == "too_large"
    # not parsed: no row counted
    assert metric("emberwatch_ingestor_rows_total", source=SOURCE_CSV, outcome="accepted") == rows_before


async def test_a_compressed_feed_is_capped_after_decompression():
    """A 64 MiB body gzipped to ~64 KB (a gzip bomb) stops at the cap, counted in decoded bytes, and the
    refusal is not retried (the same feed would answer the same)."""
    bomb = gzip.compress(b"0" * (64 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < 100_000
    with serving(bomb, {"content-encoding": "gzip"}) as (url, hits):
        async with httpx.AsyncClient() as client:
            with pytest.raises(FetchError) as caught:
                await fetch(client, url, policy=RetryPolicy(attempts=3, backoff_s=0.01,
                                                            max_body_bytes=1024 * 1024))
    assert caught.value.reason == "too_large" and not caught.value.retryable
    assert len(hits) == 1


async def test_a_declared_length_over_the_cap_is_refused_before_reading():
    with serving(b"x" * 300_000) as (url, _):
        async with httpx.AsyncClient() as client:
            with pytest.raises(FetchError, match="Content-Length 300,000 bytes"):
                await fetch(client, url, policy=RetryPolicy(attempts=1, max_body_bytes=100_000))
            ok = await fetch(client, url, policy=RetryPolicy(attempts=1, max_body_bytes=300_000))
    assert len(ok.body) == 300_000


# --- the feed's text fields -------------------------------------------------------------------------

HOSTILE_ROWS = [
    # (fire name, stage, response type)
    ('<img src=x onerror="alert(1)">', "OC", "Full"),  # HTML is data: kept as its characters
    ("G\u202e5174\u202c7\x1b[31m\x07", "U\x00C", "Mon\u2066itor\u2069"),  # controls and bidi removed
    ("Cafe\u0301", "BH", "Modified"),  # NFD: stored as NFC
    ("N" * 201, "OC", "Full"),  # a name over the cap: the row is refused
    ("G90001", "S" * 500, "R" * 300),  # descriptive fields over the cap: cut and marked
]


def hostile_feed() -> bytes:
    lines = [HEADER]
    for i, (name, stage, response) in enumerate(HOSTILE_ROWS):
        lines.append(f"BC, {name}, {50 + i * 0.1:.4f}, -120.5, 2026-07-0{i + 1}, 10.0, {stage}, PDT, {response}\n")
    return "".join(lines).encode()


def test_text_fields_are_plain_nfc_and_capped():
    result = parse("legacy-csv", hostile_feed(), 2026, max_text_chars=200)
    assert result.rows == len(HOSTILE_ROWS)
    assert [(r.reason, r.line) for r in result.rejected] == [("text_too_long", 5)]
    assert "fire name has 201 characters (at most 200)" in result.rejected[0].detail
    fires = {f.lat: f for f in result.fires.values()}
    html, controls, nfd, long_text = fires[50.0], fires[50.1], fires[50.2], fires[50.4]
    assert html.name == '<img src=x onerror="alert(1)">'  # not stripped: text stays text downstream
    assert (controls.name, controls.stage, controls.response_type) == ("G51747[31m", "UC", "Monitor")
    assert nfd.name == "Caf\u00e9" and unicodedata.is_normalized("NFC", nfd.name)
    assert len(long_text.stage) == 200 and long_text.stage.endswith("…")
    assert len(long_text.response_type) == 200 and long_text.response_type.endswith("…")
    assert result.warnings["text_cleaned"] >= 3 and result.warnings["text_truncated"] == 2


async def test_hostile_rows_through_the_ingestor_to_the_topic(kafka_settings, tmp_path):
    before = metric("emberwatch_ingestor_rows_rejected_total", source=SOURCE_CSV, reason="text_too_long")
    with serving(hostile_feed()) as (url, _):
        settings = settings_for(kafka_settings, tmp_path, csv_url=url)
        async with ingestor_for(settings) as ing:
            report = await ing.poll_once()
    assert report.outcomes[SOURCE_CSV].outcome == "ok"
    published = [e for e in ing.published if e.type == "fires.observed"]
    assert len(published) == len(HOSTILE_ROWS) - 1  # the over-long name refused
    for event in published:
        for text in (event.name, event.stage_of_control or "", event.response_type or "", event.fire_key):
            assert not any(unicodedata.category(c) == "Cc" for c in text), text
            assert not any(c in text for c in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
            assert len(text) <= 200 + len("2026_BC_")
    assert '<img src=x onerror="alert(1)">' in {e.name for e in published}
    assert metric("emberwatch_ingestor_rows_rejected_total", source=SOURCE_CSV,
                  reason="text_too_long") == before + 1


# --- images -----------------------------------------------------------------------------------------

def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_declaring(width: int, height: int) -> bytes:
    """A valid-looking PNG of a few hundred bytes whose header declares ``width`` x ``height`` RGB
    pixels (its data: one compressed row of zeros, a decompression bomb's header)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (1 + 3 * min(width, 4096)), 9)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def real_png(size: int = 64) -> bytes:
    import io

    buf = io.BytesIO()
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("width,height", [(100_000, 100_000), (65_535, 65_535), (4097, 4097), (20_000, 1_000)])
def test_a_decompression_bomb_is_refused_before_decoding(width, height):
    bomb = png_declaring(width, height)
    assert len(bomb) < 20_000
    with pytest.raises(ImageTooLarge, match="refused"):
        decode_image(bomb, 224)  # the decoder of the Triton model and the trainer
    with pytest.raises(ImageRejected) as caught:
        validate_image(bomb)  # the tiler's check of a fetched tile
    assert caught.value.reason == "too_large"


def test_pillows_own_limit_is_set_low_and_its_warning_is_an_error():
    assert Image.MAX_IMAGE_PIXELS == MAX_IMAGE_PIXELS == 4096 * 4096
    bomb = png_declaring(5000, 5000)  # 25 MP: Pillow only warns (up to twice its limit)
    with pytest.raises(ImageTooLarge, match="decompression bomb"):
        decode_image(bomb, 224, max_pixels=10**9)  # past our own check: Pillow's warning stops it


def test_too_many_bytes_are_refused_unread_and_good_images_decode():
    with pytest.raises(ImageTooLarge, match="bytes refused"):
        decode_image(b"\x89PNG\r\n\x1a\n" + b"\x00" * 2048, 224, max_bytes=1024)
    with pytest.raises(UnreadableImage):
        decode_image(b"not an image at all", 224)
    assert decode_image(real_png(), 32).shape == (32, 32, 3)
