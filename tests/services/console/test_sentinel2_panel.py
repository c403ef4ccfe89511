"""The fire panel and the models page with Sentinel-2 imagery, in a real headless browser (Debian's
chromium, playwright) against the real console and broker: each tile's product and acquisition date
against the fire's start, a Sentinel-2 fire's 2x2 grid (before/after the start by true colour/SWIR)
with clouds, indices and the not-visible flag, Mapbox tiles as undated mosaics, and each model line
named with the product its model sees. Every string from an event stays text."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import httpx
import pytest

from emberwatch.common.tile_store import TileStore
from emberwatch.contracts import ModelCandidate, ModelDecision, TileReady
from emberwatch.contracts.events import ModelCommand, SplitCounts
from tests.services.console.conftest import RunningConsole, browser_page, fire, png, publish, read_all, sign_in

HOSTILE = '<img src=x onerror="window.__pwned=1">'
POST = datetime(2026, 7, 3, 18, 42, tzinfo=UTC)  # the fixtures' fires start on 2026-06-28
PRE = datetime(2026, 6, 16, 18, 40, tzinfo=UTC)
S2_MODEL = "emberwatch-resnet50-sentinel2-swir"  # the console's model name (its default) for the SWIR line


def sentinel2_tile(store: TileStore, colour: tuple[int, int, int], label: str, product: str, at: datetime,
                   **indices) -> TileReady:
    stored = store.put(png(colour), "png")
    return TileReady.create(
        producer="console-test", tile_id=stored.tile_id, uri=stored.uri, lat=52.0, lon=-118.0, zoom=14, size_px=64,
        label=label, split="train", fire_key="S", provider="sentinel2-stac", product=product, acquired_at=at,
        catalogued_at=at.replace(hour=23), cloud_fraction=0.031, **indices)


@pytest.fixture(scope="module")
def pair(console: RunningConsole) -> dict[str, TileReady]:
    """Fire S with its Sentinel-2 pair (both composites before and after its start); the fire tile
    shows neither burn nor heat in true colour (flagged), a hostile scene id on the SWIR one."""
    store = TileStore(console.settings.tile_root)
    tiles = {
        "post-swir": sentinel2_tile(store, (220, 40, 10), "wildfire", "sentinel2-swir", POST, nbr=-0.21,
                                    dnbr=0.452, hot_pixels=12, visible=True),
        "post-tc": sentinel2_tile(store, (120, 110, 90), "wildfire", "sentinel2-true-colour", POST, nbr=0.31,
                                  dnbr=0.02, hot_pixels=0, visible=False),
        "pre-swir": sentinel2_tile(store, (40, 120, 40), "nowildfire", "sentinel2-swir", PRE),
        "pre-tc": sentinel2_tile(store, (60, 140, 60), "nowildfire", "sentinel2-true-colour", PRE),
    }
    tiles["post-swir"] = tiles["post-swir"].model_copy(update={"scene_id": HOSTILE})
    publish(console.settings, fire("S", "new", agency="ab", stage="OC", lat=52.0, lon=-118.0), *tiles.values())
    deadline = time.monotonic() + 30
    while httpx.get(f"{console.url}/healthz", timeout=5).json()["tiles"] < 7:  # the fixture's 3 and these 4
        assert time.monotonic() < deadline, "the console did not read the Sentinel-2 tiles"
        time.sleep(0.2)
    return tiles


@pytest.fixture
def page(browser, console: RunningConsole, pair):
    with browser_page(browser, console.url, height=900) as pg:
        yield pg


def card_text(page, tile: TileReady) -> str:
    return page.inner_text(f".tile[data-tile-id='{tile.tile_id}']")


def test_a_sentinel2_fire_shows_its_pair_as_a_grid_with_dates_and_indices(page, pair) -> None:
    page.goto("/#fire=S")
    page.wait_for_function("() => document.querySelectorAll('#s2-grid .s2-cell .tile img').length === 4")
    page.wait_for_function("() => [...document.querySelectorAll('#s2-grid img')].every(i => i.complete && "
                           "i.naturalWidth === 64)")
    cells = page.eval_on_selector_all("#s2-grid .s2-cell", """els => els.map(e => [e.dataset.row, e.dataset.col,
                                                                 e.querySelector('.tile').dataset.tileId])""")
    assert cells == [["pre", "sentinel2-true-colour", pair["pre-tc"].tile_id],
                     ["pre", "sentinel2-swir", pair["pre-swir"].tile_id],
                     ["post", "sentinel2-true-colour", pair["post-tc"].tile_id],
                     ["post", "sentinel2-swir", pair["post-swir"].tile_id]]
    # the grid's layout: true colour beside SWIR, the pre-fire row above the post-fire one
    boxes = {k: page.locator(f".tile[data-tile-id='{t.tile_id}'] img").bounding_box() for k, t in pair.items()}
    assert boxes["pre-tc"]["x"] < boxes["pre-swir"]["x"] and boxes["post-tc"]["x"] < boxes["post-swir"]["x"]
    assert boxes["pre-tc"]["y"] < boxes["post-tc"]["y"] and abs(boxes["pre-tc"]["x"] - boxes["post-tc"]["x"]) < 1
    post = card_text(page, pair["post-swir"])
    assert "Sentinel-2 SWIR · acquired 2026-07-03, 5 days after the fire's start" in post
    assert "cloud 3.1 % · NBR -0.210 · dNBR +0.452 · 12 hot pixels" in post and "Copernicus" in post
    assert f"scene {HOSTILE}" in post  # shown as text, never as markup
    assert "not visible" not in post
    assert "acquired 2026-06-16, 12 days before the fire's start" in card_text(page, pair["pre-tc"])
    assert "pre-fire tile" in card_text(page, pair["pre-tc"])
    flagged = page.inner_text(f".tile[data-tile-id='{pair['post-tc'].tile_id}'] .not-visible")
    assert flagged.startswith("not visible: neither a burn")
    # no Mapbox model's answer on a Sentinel-2 tile: it is set aside, with why
    page.wait_for_function(f"() => document.querySelector(\".tile[data-tile-id='{pair['post-tc'].tile_id}'] "
                           ".prediction\").textContent.includes('Mapbox model only')")
    assert page.evaluate("window.__pwned") is None and page.locator("#s2-grid img[src='x']").count() == 0


def test_a_mapbox_fires_tiles_say_they_are_an_undated_mosaic(page, console: RunningConsole) -> None:
    page.goto("/#fire=A")
    page.wait_for_function("() => document.querySelectorAll('#panel .tile img').length === 3")
    assert page.locator("#s2-grid").count() == 0
    texts = page.eval_on_selector_all("#panel .tile .imagery", "els => els.map(e => e.textContent)")
    assert texts == ["Mapbox · undated mosaic (no acquisition date)"] * 3


def test_the_models_page_says_which_product_each_models_line_sees(page, console: RunningConsole) -> None:
    page.goto("/models")
    page.wait_for_selector("#session:has-text('viewer')")
    page.wait_for_selector("#model-sees:has-text('sees Mapbox imagery')")
    assert page.locator("#lines").is_hidden()  # one line: said in a sentence
    counts = {"train": SplitCounts(wildfire=10, nowildfire=10)}
    publish(console.settings,
            ModelCandidate.create(producer="trainer", model_name=S2_MODEL, version="1", run_id="c" * 32,
                                  artifact_uri="runs:/" + "c" * 32 + "/triton", dataset_digest="d", counts=counts,
                                  metrics={"val_accuracy": 0.9}, product="sentinel2-swir"),
            ModelDecision.create(producer="gatekeeper", model_name=S2_MODEL, candidate_version="1",
                                 champion_version=None, decision="promoted", reason=HOSTILE, basis="floor",
                                 product="sentinel2-swir"))
    page.wait_for_selector("#lines li[data-product='sentinel2-swir']", timeout=10_000)
    lines = page.eval_on_selector_all("#lines li", "els => els.map(e => e.textContent)")
    assert lines == ["Mapbox (model emberwatch-resnet50): champion none · challenger none · previous none",
                     f"Sentinel-2 SWIR (model {S2_MODEL}): champion 1 · challenger none · previous none"]
    assert page.text_content("#champion") == "none"  # the Mapbox line's roles stay its own
    role = page.inner_text(".role[data-product='sentinel2-swir'][data-role='champion'] h3")
    assert role == f"champion — version 1 — {S2_MODEL} sees Sentinel-2 SWIR"
    row = page.locator("#decisions tbody tr").first.locator("td")
    assert row.nth(1).inner_text() == "Sentinel-2 SWIR" and row.last.inner_text() == HOSTILE
    assert page.evaluate("window.__pwned") is None


def test_a_signed_in_operator_sends_a_command_to_the_line_they_pick(page, console: RunningConsole) -> None:
    counts = {"train": SplitCounts(wildfire=10, nowildfire=10)}
    publish(console.settings, ModelCandidate.create(  # a challenger of the SWIR line to reject
        producer="trainer", model_name=S2_MODEL, version="2", run_id="e" * 32, artifact_uri="runs:/" + "e" * 32 +
        "/triton", dataset_digest="d", counts=counts, metrics={}, product="sentinel2-swir"))
    page.goto("/models")
    sign_in(page, console.secrets, "bob")
    page.wait_for_selector("#command-product option[value='sentinel2-swir']", state="attached", timeout=10_000)
    page.select_option("#command-product", "sentinel2-swir")
    page.select_option("#command-kind", "reject")
    page.fill("#command-reason", "clouds on every tile")
    page.click("#command-send")
    page.wait_for_selector("#command-status[data-command-id]")
    command_id = page.get_attribute("#command-status", "data-command-id")
    assert S2_MODEL in page.text_content("#command-status")
    (command,) = [c for b in read_all(console.settings, ModelCommand.TOPIC)
                  if (c := ModelCommand.from_bytes(b)).event_id == command_id]
    assert (command.command, command.model_name, command.requested_by) == ("reject", S2_MODEL, "console:bob")
    refused = page.evaluate("""async () => { const r = await fetch('/api/commands', {method: 'POST',
        headers: {'Content-Type': 'application/json'},
        body: JSON.stringify({command: 'reject', product: 'landsat'})}); return [r.status, await r.text()]; }""")
    assert refused[0] == 422 and "unknown imagery product" in refused[1]
