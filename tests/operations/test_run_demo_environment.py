"""What ``emberwatch demo --sentinel2`` adds to the services' environment, and that the settings take it."""

from __future__ import annotations

from emberwatch.common.config import Settings
from emberwatch.ml.settings import MLSettings
from emberwatch.contracts.products import MAPBOX, SENTINEL2_SWIR
from emberwatch.operations.run_demo import system_environment


def test_the_sentinel2_demo_turns_on_the_tiler_line_and_its_model_line(monkeypatch):
    settings = Settings()
    plain = system_environment(settings)
    with_s2 = system_environment(settings, sentinel2=True)
    assert "EMBERWATCH_TILER_SENTINEL2" not in plain and "EMBERWATCH_MODEL_LINES" not in plain
    assert with_s2["EMBERWATCH_TILER_SENTINEL2"] == "true"
    assert with_s2["EMBERWATCH_TILER_SENTINEL2_STAC_URL"].endswith(f":{settings.stac_sim_port}")
    for name, value in with_s2.items():
        monkeypatch.setenv(name, value)
    lines = MLSettings().lines()
    assert lines == (MAPBOX, SENTINEL2_SWIR)
