"""The fire map in a real headless browser (Debian's chromium, playwright) against the real console and
broker: the offline vector basemap at the opening zoom, markers coloured, shaped and sized by stage and
hectares, the legend, a link per fire, the review queue stepping through its fires, a fire's history."""

from __future__ import annotations

import pytest

from tests.services.console.conftest import RunningConsole, browser_page, check_screenshot, fire, publish

HOSTILE = '<img src=x onerror="window.__pwned=1">'


@pytest.fixture(scope="module")
def season(console: RunningConsole) -> RunningConsole:
    """Fires of every stage and size, far enough apart to stay unclustered at the opening zoom."""
    publish(console.settings,
            fire("S1", "new", agency="yt", stage="OC", hectares=0.5, lat=61.0, lon=-136.0),
            fire("S2", "new", agency="on", stage="BH", hectares=500.0, lat=48.5, lon=-82.0),
            fire("S3", "new", agency="mb", stage="UC", hectares=20000.0, lat=58.0, lon=-96.0),
            fire("S4", "new", agency="ak", stage="Staffed/Uncontained", hectares=3.0, lat=45.5, lon=-100.0,
                 at="2026-07-02T06:00:00"))
    publish(console.settings, fire("S5", "new", agency="qc", stage="OC", hectares=1.0, lat=50.0, lon=-73.0,
                                   at="2026-07-02T06:00:00").model_copy(update={"name": HOSTILE}))
    return console


@pytest.fixture
def page(browser, season: RunningConsole):
    with browser_page(browser, season.url, height=860) as pg:
        yield pg


def open_map(page, hash_: str = "") -> None:
    page.goto("/" + hash_)
    page.wait_for_selector("#map[data-fires-drawn='7']", state="attached", timeout=15_000)
    if not hash_:  # the opening view: every fire on screen, none clustered
        page.wait_for_function("() => document.querySelectorAll('.fire-marker').length === 7", timeout=15_000)


def test_the_vector_basemap_is_drawn_at_the_opening_zoom(page) -> None:
    open_map(page)
    page.wait_for_selector("#map[data-vector-basemap='drawn']", timeout=15_000)
    assert page.evaluate("map.getZoom()") == 4
    # land, coastlines, borders, Canada's provinces and US states as SVG paths with real geometry, and no raster below zoom 13
    lengths = page.evaluate("""() => Object.fromEntries(['basemap-land', 'basemap-coast', 'basemap-border',
        'basemap-admin1', 'basemap-province'].map(c => [c, [...document.querySelectorAll('.vector-basemap path.' + c)]
        .reduce((n, p) => n + (p.getAttribute('d') || '').length, 0)]))""")
    assert all(n > 1000 for n in lengths.values()), lengths
    assert page.locator("img.leaflet-tile").count() == 0
    # the land is drawn inside the map (a path's box overlaps the visible map)
    assert page.evaluate("""() => { const m = document.getElementById('map').getBoundingClientRect();
        return [...document.querySelectorAll('.vector-basemap path.basemap-land')].some(p => {
          const b = p.getBoundingClientRect();
          return b.right > m.left && b.left < m.right && b.bottom > m.top && b.top < m.bottom; }); }""")
    labels = page.eval_on_selector_all(".place-label", "els => els.map(e => e.textContent)")
    assert "Ottawa" in labels and "Kamloops" not in labels  # towns appear from zoom 7
    page.evaluate("map.setView([50.7, -120.3], 8)")
    page.wait_for_function("() => [...document.querySelectorAll('.place-label')].some(e => e.textContent === 'Kamloops')")
    assert "Natural Earth" in page.text_content(".leaflet-control-attribution")


def marker(page, key: str) -> dict:
    return page.eval_on_selector(f".fire-marker[data-fire-key='{key}']", """el => ({
        stage: el.dataset.stage, size: Number(el.dataset.size), classes: [...el.classList],
        fill: el.querySelector('.fire-shape').getAttribute('fill'),
        shape: el.querySelector('.fire-shape').tagName, tabindex: el.getAttribute('tabindex')})""")


def test_markers_take_colour_and_shape_from_stage_and_size_from_hectares(page) -> None:
    open_map(page)
    s1, s2, s3, s4 = (marker(page, k) for k in ("S1", "S2", "S3", "S4"))
    assert (s1["stage"], s1["fill"], s1["shape"]) == ("OC", "#d55e00", "polygon")  # red triangle
    assert (s2["stage"], s2["fill"]) == ("BH", "#e69f00")  # orange diamond
    assert (s3["stage"], s3["fill"], s3["shape"]) == ("UC", "#009e73", "circle")  # green circle
    assert (s4["stage"], s4["fill"], s4["shape"]) == ("other", "#8c8c8c", "rect")  # free text: grey square
    assert s1["size"] < s4["size"] < s2["size"] < s3["size"]  # 0.5 < 3 < 500 < 20,000 ha
    assert "pred-none" in s1["classes"] and s1["tabindex"] == "0"
    # the hostile name is text in the marker's label and tooltip, and ran nothing
    label = page.get_attribute(".fire-marker[data-fire-key='S5']", "aria-label")
    assert label.startswith(HOSTILE)
    page.hover(".fire-marker[data-fire-key='S5']")
    page.wait_for_selector(".leaflet-tooltip .fire-tooltip")
    assert HOSTILE in page.text_content(".leaflet-tooltip .fire-tooltip")
    assert page.evaluate("window.__pwned") is None
    # at a lower zoom, nearby fires cluster; the cluster takes the most urgent stage's colour
    page.evaluate("map.setZoom(2)")
    page.wait_for_selector(".fire-cluster")
    assert page.eval_on_selector_all(".fire-cluster", "els => els.some(e => e.classList.contains('stage-OC'))")


def test_the_legend_explains_every_symbol(page) -> None:
    open_map(page)
    legend = page.locator("#legend")
    assert legend.is_visible()
    text = legend.inner_text()
    for words in ("out of control", "being held", "under control", "ha", "champion says fire", "disagree",
                  "since your last look", "cluster"):
        assert words in text, words
    assert page.locator("#legend svg").count() >= 9


def test_a_link_opens_the_fire_and_moves_the_map_there(page) -> None:
    open_map(page, "#fire=S3")
    page.wait_for_selector("#panel h3:has-text('Fire S3 (mb)')")
    center = page.evaluate("(() => { const c = map.getCenter(); return [c.lat, c.lng, map.getZoom()]; })()")
    assert abs(center[0] - 58.0) < 0.5 and abs(center[1] + 96.0) < 0.5 and center[2] >= 8
    page.wait_for_selector(".fire-marker.selected[data-fire-key='S3']")
    # its history, from fires.observed.v1
    page.wait_for_selector("#fire-history table")
    assert "UC" in page.inner_text("#fire-history") and "20000" in page.inner_text("#fire-history")
    # a hash change moves to another fire; B's history shows it was being held, then under control
    page.evaluate("location.hash = '#fire=B'")
    page.wait_for_selector("#panel h3:has-text('Fire B (ab)')")
    page.wait_for_function("() => { const c = map.getCenter(); return Math.abs(c.lat - 54) < 0.5 "
                           "&& Math.abs(c.lng + 114) < 0.5; }")
    page.wait_for_function("() => document.querySelectorAll('#fire-history tr').length === 3")
    rows = page.eval_on_selector_all("#fire-history tr", "rs => rs.map(r => r.innerText)")
    assert "UC" in rows[1] and "40" in rows[1] and "BH" in rows[2]
    # opening another fire from its marker updates the link
    page.evaluate("map.setView([56, -106], 4, {animate: false})")
    page.wait_for_function("() => document.querySelectorAll('.fire-marker').length === 7")  # drawn again
    page.wait_for_timeout(300)  # the clusters' redraw after a zoom settles (not a timing assertion)
    page.focus(".fire-marker[data-fire-key='S2']")
    page.wait_for_function("() => document.activeElement?.dataset?.fireKey === 'S2'")
    page.keyboard.press("Enter")
    page.wait_for_selector("#panel h3:has-text('Fire S2 (on)')")
    assert page.evaluate("location.hash") == "#fire=S2"


def test_a_marker_is_reached_and_opened_with_the_keyboard(page) -> None:
    open_map(page)
    page.focus(".fire-marker[data-fire-key='A']")
    page.keyboard.press("Enter")
    page.wait_for_selector("#panel h3:has-text('Fire A (bc)')")


def test_the_review_queue_steps_through_what_changed_since_a_time(page) -> None:
    open_map(page)
    # since the afternoon of July 1st: B grew (12.5 -> 40 ha at 18:00); S4 and S5 are new (July 2nd)
    page.select_option("#review-kind", "new")
    page.fill("#review-since", "2026-07-01T15:00")
    page.dispatch_event("#review-since", "change")
    page.wait_for_selector("#review-status:has-text('3 fire(s) to review')")
    assert "changed-grown" in marker(page, "B")["classes"] and "changed-new" in marker(page, "S4")["classes"]
    assert "changed" not in marker(page, "A")["classes"]
    seen = []
    for i in range(3):
        page.click("#review-next")
        page.wait_for_selector(f"#review-status:has-text('{i + 1} of 3')")
        key = page.get_attribute("#review-status", "data-fire-key")
        page.wait_for_selector(f"#panel h3:has-text('Fire {key}')" if key != "S5" else "#panel h3")
        seen.append(key)
        if key == "S5":  # the hostile name is shown as text
            assert HOSTILE in page.text_content("#review-status")
    assert seen == ["S4", "S5", "B"]  # new before grown, the biggest first
    assert page.evaluate("window.__pwned") is None
    page.click("#review-next")  # wraps around
    page.wait_for_selector("#review-status:has-text('1 of 3')")
    page.click("#review-prev")
    page.wait_for_selector("#review-status:has-text('3 of 3')")
    assert page.get_attribute("#review-status", "data-fire-key") == seen[2]
    # nothing disagrees (no models here): that queue is empty
    page.select_option("#review-kind", "disagree")
    page.wait_for_selector("#review-status:has-text('nothing to review')")
    assert page.is_disabled("#review-next")


def test_the_fire_map_renders_to_a_screenshot(page, tmp_path) -> None:
    open_map(page, "#fire=B")
    page.wait_for_selector("#map[data-vector-basemap='drawn']", timeout=15_000)
    page.wait_for_selector("#fire-history table")
    page.evaluate("map.setView([55, -105], 4)")
    page.wait_for_timeout(400)
    check_screenshot("console-fire-map.png", page.screenshot(full_page=True), tmp_path)
