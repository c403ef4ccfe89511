"""Which catalogue the client searches, and what it refuses before asking."""

from __future__ import annotations

from datetime import UTC, datetime

import planetary_computer
import pytest

from services.tiler.sentinel2.search import (
    EARTH_SEARCH_URL,
    PLANETARY_COMPUTER_URL,
    StacCatalogue,
    search_scenes,
)


def test_earth_search_v1_collection_1_is_the_default_and_planetary_computer_signs_hrefs() -> None:
    default = StacCatalogue()
    assert (default.url, default.collections, default.modifier) == (EARTH_SEARCH_URL, ("sentinel-2-c1-l2a",), None)
    pc = StacCatalogue.planetary_computer()
    assert pc.url == PLANETARY_COMPUTER_URL and pc.modifier is planetary_computer.sign_inplace

    def own_signer(obj: object) -> object:
        return obj

    assert StacCatalogue.planetary_computer(signer=own_signer).modifier is own_signer


def test_a_point_outside_the_globe_is_refused_before_any_request() -> None:
    catalogue = StacCatalogue(url="http://127.0.0.1:9/unreachable")
    with pytest.raises(ValueError, match="lon/lat"):
        search_scenes(catalogue, 200.0, 10.0, datetime(2026, 7, 1, tzinfo=UTC), datetime(2026, 7, 2, tzinfo=UTC))
