"""NBR, dNBR, hot pixels and the not-visible rule."""

from __future__ import annotations

import numpy as np
import pytest

from services.tiler.sentinel2.indices import dnbr, fire_evidence, hot_pixels, is_visible, mean_nbr, nbr


def _box(nir08: float, swir16: float, swir22: float, n: int = 8) -> dict[str, np.ndarray]:
    return {"nir08": np.full((n, n), nir08, np.float32), "swir16": np.full((n, n), swir16, np.float32),
            "swir22": np.full((n, n), swir22, np.float32)}


def test_nbr_of_vegetation_and_of_a_burn() -> None:
    assert nbr(np.array([0.4]), np.array([0.1]))[0] == pytest.approx(0.6)
    assert nbr(np.array([0.1]), np.array([0.3]))[0] == pytest.approx(-0.5)
    assert np.isnan(nbr(np.array([0.0]), np.array([0.0]))[0])


def test_mean_nbr_uses_only_clear_pixels() -> None:
    nir = np.array([[0.4, 0.9]])
    swir = np.array([[0.1, 0.0]])
    assert mean_nbr(nir, swir, clear=np.array([[True, False]])) == pytest.approx(0.6)
    assert mean_nbr(nir, swir, clear=np.array([[False, False]])) is None


def test_dnbr_is_pre_minus_post() -> None:
    assert dnbr(0.6, -0.2) == pytest.approx(0.8)
    assert dnbr(None, 0.1) is None


def test_hot_pixels_need_b12_high_against_b11_and_b8a() -> None:
    box = _box(nir08=0.2, swir16=0.3, swir22=0.25)
    assert hot_pixels(box["swir16"], box["swir22"], box["nir08"]) == 0
    box["swir22"][2:4, 2:4] = 1.5  # a saturating flame front
    assert hot_pixels(box["swir16"], box["swir22"], box["nir08"]) == 4
    box["swir16"][2:4, 2:4] = 1.2  # bright in B11 too (e.g. a white roof): no
    assert hot_pixels(box["swir16"], box["swir22"], box["nir08"]) == 0


@pytest.mark.parametrize(("change", "hot", "visible"), [
    (0.05, 0, False), (0.1, 0, True), (0.05, 3, True), (None, 0, False), (None, 1, True), (-0.3, 0, False)])
def test_not_visible_below_the_unburned_threshold_without_heat(change, hot, visible) -> None:
    assert is_visible(change, hot) is visible


def test_fire_evidence_of_a_burn_against_its_pre_fire_scene() -> None:
    evidence = fire_evidence(post=_box(0.12, 0.3, 0.28), pre=_box(0.35, 0.2, 0.1))
    assert evidence.dnbr == pytest.approx((0.25 / 0.45) - (-0.16 / 0.40), abs=1e-6)
    assert evidence.visible and evidence.hot_pixels == 0
    unchanged = fire_evidence(post=_box(0.35, 0.2, 0.1), pre=_box(0.35, 0.2, 0.1))
    assert unchanged.dnbr == pytest.approx(0.0) and not unchanged.visible
