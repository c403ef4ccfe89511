"""The model commands pick a model line by its imagery product: ``--product`` names the line's model,
Mapbox (the configured model name itself) by default, and the help says so."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from emberwatch.cli.main import app
from emberwatch.cli.model_commands import commanded_model


def test_the_product_picks_its_lines_model_and_mapbox_is_the_default():
    assert commanded_model("emberwatch-wildfire", None, None) == "emberwatch-wildfire"
    assert commanded_model("emberwatch-wildfire", None, "mapbox") == "emberwatch-wildfire"
    assert commanded_model("emberwatch-wildfire", None, "sentinel2-swir") == "emberwatch-wildfire-sentinel2-swir"
    assert commanded_model("emberwatch-wildfire", "other-model", None) == "other-model"
    with pytest.raises(typer.BadParameter, match="not both"):
        commanded_model("emberwatch-wildfire", "other-model", "sentinel2-swir")


@pytest.mark.parametrize("command", ["models", "promote", "rollback", "approve", "reject", "predict"])
def test_the_help_offers_every_product(command):
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    assert "--product" in result.output
    assert all(p in result.output for p in ("mapbox", "sentinel2-swir", "sentinel2-true-colour"))


def test_an_unknown_product_is_refused_before_anything_is_sent():
    result = CliRunner().invoke(app, ["promote", "3", "--product", "landsat"], env={"COLUMNS": "200"})
    assert result.exit_code == 2 and "landsat" in result.output
