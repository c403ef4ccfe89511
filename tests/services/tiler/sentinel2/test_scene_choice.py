"""Cloud fraction over the fire's box from SCL, and the choice of scene."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from services.tiler.sentinel2.scene_choice import Assessed, clear_mask, clearest, cloud_fraction, latest_clear


def test_cloud_fraction_counts_shadow_cloud_and_cirrus_among_valid_pixels() -> None:
    scl = np.full((10, 10), 4, np.uint8)  # vegetation
    scl[0, :] = 3  # shadow
    scl[1, :] = 8
    scl[2, :] = 9
    scl[3, :] = 10  # thin cirrus
    scl[4, :] = 0  # no data: not counted
    scl[5, :] = 6  # water: clear
    assert cloud_fraction(scl) == pytest.approx(40 / 90)
    assert clear_mask(scl).sum() == 50


def test_a_box_mostly_without_data_is_not_clear() -> None:
    scl = np.zeros((10, 10), np.uint8)
    scl[0, :3] = 4
    assert cloud_fraction(scl) == 1.0


def _scene(day: int, cloud: float) -> Assessed:
    return Assessed(f"S2A_T10UEV_202607{day:02d}T190000_L2A", datetime(2026, 7, day, 19, tzinfo=UTC), None, cloud)


def test_clearest_ignores_the_granule_cloud_cover_and_prefers_the_earliest_tie() -> None:
    scenes = [_scene(3, 0.5), _scene(8, 0.05), _scene(13, 0.05), _scene(18, 0.1)]
    assert clearest(scenes, 0.2).acquired_at.day == 8
    assert clearest(scenes[:1], 0.2) is None
    assert latest_clear(scenes, 0.2).acquired_at.day == 18
