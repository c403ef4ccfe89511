"""A tile's imagery for the fire panel: product, acquisition date against the fire's start, clouds and
indices, the not-visible flag, and a Sentinel-2 fire's 2x2 grid (pre/post by true colour/SWIR)."""

from __future__ import annotations

from datetime import UTC, datetime

from emberwatch.contracts import TileReady
from services.console.imagery import days_since_start, imagery_view, sentinel2_grid, when_text

START = datetime(2026, 6, 28, 14, 0, tzinfo=UTC)
POST = datetime(2026, 7, 3, 18, 42, tzinfo=UTC)
PRE = datetime(2026, 6, 16, 18, 40, tzinfo=UTC)


def tile(n: int, label: str = "wildfire", product: str = "mapbox", **dated) -> TileReady:
    tile_id = f"{n:064x}"
    return TileReady.create(producer="test", tile_id=tile_id, uri=f"file:///tiles/{tile_id[:2]}/{tile_id}.png",
                            lat=50.0, lon=-120.0, zoom=14, size_px=224, label=label, split="train", fire_key="A",
                            provider="sentinel2-stac" if dated else "mapbox-static", product=product, **dated)


def s2(n: int, label: str, product: str, at: datetime, **indices) -> TileReady:
    return tile(n, label, product, acquired_at=at, catalogued_at=at.replace(hour=23), scene_id=f"S2B_{n}",
                cloud_fraction=0.031, **indices)


def test_a_mapbox_tile_is_an_undated_mosaic():
    view = imagery_view(tile(1), START)
    assert (view["product_title"], view["phase"], view["acquired_at"], view["days_since_start"]) == (
        "Mapbox", None, None, None)
    assert view["when"] == "undated mosaic (no acquisition date)"
    assert view["credits"] == "© Mapbox © OpenStreetMap © Maxar"
    assert view["facts"] == "" and view["not_visible"] is None


def test_a_sentinel2_tile_says_when_it_was_sensed_against_the_fires_start_and_what_it_shows():
    post = imagery_view(s2(2, "wildfire", "sentinel2-swir", POST, nbr=-0.21, dnbr=0.452, hot_pixels=12,
                           visible=True), START)
    assert (post["product_title"], post["phase"], post["days_since_start"]) == ("Sentinel-2 SWIR", "post", 5)
    assert post["when"] == "acquired 2026-07-03, 5 days after the fire's start"
    assert post["facts"] == "scene S2B_2 · cloud 3.1 % · NBR -0.210 · dNBR +0.452 · 12 hot pixels"
    assert post["not_visible"] is None and "Copernicus" in post["credits"]
    pre = imagery_view(s2(3, "nowildfire", "sentinel2-true-colour", PRE), START)
    assert (pre["product_title"], pre["phase"]) == ("Sentinel-2 true colour", "pre")
    assert pre["when"] == "acquired 2026-06-16, 12 days before the fire's start"
    assert imagery_view(s2(4, "wildfire", "sentinel2-swir", POST), None)["when"] == (
        "acquired 2026-07-03 (the fire's start is not known)")


def test_a_fire_tile_showing_neither_burn_nor_heat_is_flagged_not_visible():
    view = imagery_view(s2(5, "wildfire", "sentinel2-swir", POST, nbr=0.4, dnbr=0.02, hot_pixels=1,
                           visible=False), START)
    assert view["not_visible"].startswith("not visible:") and view["facts"].endswith("1 hot pixel")


def test_days_count_calendar_dates():
    assert days_since_start(START.replace(hour=23), START) == 0
    assert when_text(START, 0) == "acquired 2026-06-28, the day the fire started"
    assert when_text(START, -1) == "acquired 2026-06-28, 1 day before the fire's start"


def test_a_sentinel2_fires_tiles_form_a_grid_of_pre_and_post_by_true_colour_and_swir():
    post_swir, post_tc = s2(6, "wildfire", "sentinel2-swir", POST), s2(7, "wildfire", "sentinel2-true-colour", POST)
    pre_swir, pre_tc = s2(8, "nowildfire", "sentinel2-swir", PRE), s2(9, "nowildfire", "sentinel2-true-colour", PRE)
    grid = sentinel2_grid([tile(1), post_swir, pre_tc, post_tc, pre_swir])
    assert grid == [[pre_tc.tile_id, pre_swir.tile_id], [post_tc.tile_id, post_swir.tile_id]]
    assert sentinel2_grid([tile(1), post_swir]) == [[None, None], [None, post_swir.tile_id]]  # the rest missing
    assert sentinel2_grid([tile(1), tile(2, "nowildfire")]) is None  # Mapbox only: no grid
    newer = s2(10, "wildfire", "sentinel2-swir", POST.replace(day=8))
    assert sentinel2_grid([newer, post_swir])[1][1] == newer.tile_id  # the newest acquisition wins a cell


def test_the_view_gives_a_fires_tiles_their_days_since_its_start_and_its_grid():
    from services.console.view import ConsoleView
    from tests.services.console.conftest import fire

    view = ConsoleView()
    view.add_fire(fire("A", "new"))  # started 2026-06-28
    post, pre = s2(11, "wildfire", "sentinel2-swir", POST), s2(12, "nowildfire", "sentinel2-swir", PRE)
    for t in (tile(13, "nowildfire"), pre, post):
        view.add_tile(t)
    shown = view.fire_tiles("A")
    assert [(t["tile_id"], t["imagery"]["days_since_start"]) for t in shown] == [
        (post.tile_id, 5), (tile(13).tile_id, None), (pre.tile_id, -12)]  # the fire's own tile first
    assert view.fire_grid("A") == [[None, pre.tile_id], [None, post.tile_id]]
    assert view.fire_grid("no such fire") is None
