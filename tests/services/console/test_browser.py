"""The console in a real headless browser (Debian's chromium driven by playwright; no download)."""

from __future__ import annotations

import json
import time

import pytest

from emberwatch.contracts import ModelDecision
from emberwatch.contracts.events import LabelFeedback, ModelCommand
from tests.services.console.conftest import (
    MAPBOX_TOKEN,
    RunningConsole,
    fire,
    publish,
    check_screenshot,
    read_all,
    sign_in,
)


@pytest.fixture
def page(browser, console: RunningConsole):
    context = browser.new_context(base_url=console.url)
    pg = context.new_page()
    try:
        yield pg
    finally:
        context.close()


def marker_keys(page) -> list[str]:
    return sorted(page.eval_on_selector_all(".fire-marker", "els => els.map(e => e.dataset.fireKey)"))


def test_map_shows_one_marker_per_active_fire_and_updates_live(page, console: RunningConsole) -> None:
    page.goto("/")
    page.wait_for_function("() => document.querySelectorAll('.fire-marker').length === 2")
    assert marker_keys(page) == ["A", "B"]  # C is out
    # the basemap: none below EMBERWATCH_CONSOLE_BASEMAP_MIN_ZOOM (13) ...
    page.wait_for_timeout(300)
    assert page.locator("img.leaflet-tile").count() == 0
    # ... and from it, tiles through the console's proxy (the fake Mapbox answers), no token in the page
    page.evaluate("map.setZoom(13)")
    page.wait_for_selector("img.leaflet-tile-loaded")
    srcs = page.eval_on_selector_all("img.leaflet-tile", "els => els.map(e => e.src)")
    assert srcs and all(s.startswith(console.url + "/basemap/") for s in srcs)
    assert MAPBOX_TOKEN not in page.content()
    page.evaluate("map.setView([56, -106], 4, {animate: false})")  # fires are drawn where the map looks
    started = time.monotonic()
    publish(console.settings, fire("D", "new", agency="sk", stage="OC", lat=55.0, lon=-105.0))
    page.wait_for_function("() => document.querySelectorAll('.fire-marker').length === 3", timeout=5000)
    new_fire_s = time.monotonic() - started
    assert marker_keys(page) == ["A", "B", "D"]
    publish(console.settings, fire("D", "out", agency="sk", stage="EX", lat=55.0, lon=-105.0,
                                   at="2026-07-03T00:00:00"))
    page.wait_for_function("() => document.querySelectorAll('.fire-marker').length === 2", timeout=5000)
    print(f"live update: a new fire on the map {new_fire_s:.2f}s after its event was published")
    # the filters: by agency, then by stage
    page.select_option("#filter-agency", "ab")
    assert marker_keys(page) == ["B"]
    page.select_option("#filter-agency", "")
    page.select_option("#filter-stage", "OC")
    assert marker_keys(page) == ["A"]


def test_clicking_a_fire_shows_its_tiles_loaded_with_attribution(page, console: RunningConsole) -> None:
    page.goto("/")
    page.wait_for_selector(".fire-marker[data-fire-key='A']")
    page.click(".fire-marker[data-fire-key='A']")
    page.wait_for_function("() => document.querySelectorAll('.tile img').length === 3")
    page.wait_for_function("() => [...document.querySelectorAll('.tile img')].every(i => i.complete && i.naturalWidth === 64)")
    ids = page.eval_on_selector_all(".tile", "els => els.map(e => e.dataset.tileId)")
    assert ids[0] == console.tiles["fire"].tile_id  # the fire's own tile first, then the matched ones
    assert sorted(ids[1:]) == sorted([console.tiles["free1"].tile_id, console.tiles["free2"].tile_id])
    attributions = page.eval_on_selector_all(".tile .attribution", "els => els.map(e => e.textContent)")
    assert attributions == ["© Mapbox © OpenStreetMap © Maxar"] * 3
    assert page.locator(".tile button").count() == 0  # a viewer gets no feedback buttons


def test_a_feedback_click_publishes_exactly_one_label_event(page, console: RunningConsole) -> None:
    tile = console.tiles["free1"]
    before = [LabelFeedback.from_bytes(b) for b in read_all(console.settings, LabelFeedback.TOPIC)]
    page.goto("/")
    sign_in(page, console.secrets, "alice")
    page.click(".fire-marker[data-fire-key='A']")
    card = page.locator(f".tile[data-tile-id='{tile.tile_id}']")
    card.locator(".feedback-note").fill("smoke plume, not a building")
    card.locator("button[data-label='wildfire']").click()
    card.locator(".feedback-status:has-text('feedback sent')").wait_for()
    time.sleep(1.0)  # a second event, if the page sent one, would be there by now
    after = [LabelFeedback.from_bytes(b) for b in read_all(console.settings, LabelFeedback.TOPIC)]
    new = [e for e in after if e.event_id not in {b.event_id for b in before}]
    assert len(new) == 1
    (event,) = new
    assert (event.tile_id, event.label, event.labelled_by, event.previous_label, event.note) == (
        tile.tile_id, "wildfire", "console:alice", "nowildfire", "smoke plume, not a building")
    assert console.secrets["alice"] not in event.model_dump_json()
    # the console reads its own feedback back from the stream and shows it on the tile
    card.locator(".feedback-known:has-text('console:alice')").wait_for(timeout=5000)


def test_an_unauthenticated_promote_is_refused(page, console: RunningConsole) -> None:
    before = len(read_all(console.settings, ModelCommand.TOPIC))
    page.goto("/models")
    page.wait_for_selector("#session:has-text('viewer')")
    assert page.locator("#commands").is_hidden()
    status = page.evaluate("""async () => (await fetch('/api/commands', {method: 'POST',
        headers: {'Content-Type': 'application/json'},
        body: JSON.stringify({command: 'promote', version: '2'})})).status""")
    assert status == 401
    assert len(read_all(console.settings, ModelCommand.TOPIC)) == before


def test_a_signed_in_approve_publishes_a_command_and_shows_its_answer(page, console: RunningConsole) -> None:
    page.goto("/models")
    sign_in(page, console.secrets, "carol")
    page.select_option("#command-kind", "approve")
    page.fill("#command-reason", "looks good on the map")
    page.click("#command-send")
    page.wait_for_selector("#command-status[data-command-id]")
    command_id = page.get_attribute("#command-status", "data-command-id")
    commands = [ModelCommand.from_bytes(b) for b in read_all(console.settings, ModelCommand.TOPIC)]
    (command,) = [c for c in commands if c.event_id == command_id]
    assert (command.command, command.requested_by, command.reason, command.version) == (
        "approve", "console:carol", "looks good on the map", None)
    assert command.expires_at is not None
    # answer as the gatekeeper would: the decision whose command_id is the command's id
    publish(console.settings, ModelDecision.create(
        producer="gatekeeper", model_name=command.model_name, candidate_version="7", champion_version="6",
        decision="promoted", reason="approved by an operator", basis="operator",
        requested_by=command.requested_by, command_id=command.event_id,
        evidence={"n": 84, "p_value": 0.031}))
    page.wait_for_selector("#command-status:has-text('answer: promoted')", timeout=5000)
    assert page.text_content("#champion") == "7"
    row = page.locator(f"#decisions tr[data-command-id='{command_id}']")
    assert json.dumps(row.inner_text()).count("console:carol") == 1 and "84" in row.inner_text()


def test_each_page_renders_to_a_screenshot(page, console: RunningConsole, tmp_path) -> None:
    """The map (a fire opened, its tiles shown) and the models page render with nothing behind them
    but the broker (no Triton, no gatekeeper)."""
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto("/")
    page.wait_for_selector(".fire-marker[data-fire-key='A']")
    page.click(".fire-marker[data-fire-key='A']")
    page.wait_for_function("() => [...document.querySelectorAll('.tile img')].filter(i => i.complete && i.naturalWidth > 0).length === 3")
    shots = {"console-map.png": page.screenshot(full_page=True)}
    page.goto("/models")
    page.wait_for_selector("#session:has-text('viewer')")
    shots["console-models.png"] = page.screenshot(full_page=True)
    for name, data in shots.items():  # docs/images has the fuller ones (test_with_gatekeeper.py)
        check_screenshot(name, data, tmp_path, copy_to_docs=False)
