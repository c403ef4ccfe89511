"""The model lines: each product's settings, and which line each event goes to (recording lines
stand in for the gatekeepers; tests/services/gatekeeper/test_integration_lines.py runs real ones)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from emberwatch.contracts.events import (
    LabelFeedback,
    ModelCandidate,
    ModelCommand,
    SplitCounts,
    TileReady,
    TileRelabelled,
)
from services.gatekeeper.lines import GatekeeperLines, NoLine
from services.gatekeeper.settings import GatekeeperSettings

BASE = "emberwatch-resnet50"


class RecordingLine:
    """What a line was handed, in order."""

    def __init__(self, settings: GatekeeperSettings):
        self.settings = settings
        self.seen: list[tuple[str, object]] = []

    def _took(self, kind: str, what) -> list:
        self.seen.append((kind, what))
        return [f"{self.settings.product}:{kind}"]

    def on_candidate(self, c):
        return self._took("candidate", c)

    def on_tile(self, t):
        return self._took("tile", t.tile_id)

    def on_tiles(self, ts):
        return self._took("tiles", [t.tile_id for t in ts])

    def on_relabels(self, es):
        return self._took("relabels", len(es))

    def on_feedback(self, e):
        return self._took("feedback", e.tile_id)

    def on_command(self, c):
        return self._took("command", c.model_name)

    def on_tick(self):
        return self._took("tick", None)


def _lines(tmp_path, lines="mapbox,sentinel2-swir") -> GatekeeperLines:
    return GatekeeperLines(GatekeeperSettings(state_dir=tmp_path, model_lines=lines), build=RecordingLine)


def _tile(n: int, product: str = "mapbox") -> TileReady:
    tile_id = hashlib.sha256(str(n).encode()).hexdigest()
    return TileReady.create(producer="test", tile_id=tile_id, uri=f"file:///tiles/{tile_id[:2]}/{tile_id}.png",
                            lat=50.0, lon=-120.0, zoom=12, size_px=256, label="wildfire", split="test",
                            fire_key="f1", provider="test", product=product)


def _candidate(product: str, model_name: str) -> ModelCandidate:
    return ModelCandidate.create(producer="test", model_name=model_name, version="3", run_id="r",
                                 artifact_uri="runs:/r/triton", product=product, dataset_digest="d",
                                 counts={"test": SplitCounts(wildfire=1, nowildfire=1)}, metrics={})


def test_each_line_has_its_own_names_and_state_and_mapbox_keeps_todays(tmp_path):
    settings = GatekeeperSettings(state_dir=tmp_path, model_lines="mapbox,sentinel2-swir")
    mapbox, swir = settings.for_line("mapbox"), settings.for_line("sentinel2-swir")
    assert (mapbox.model_name, mapbox.gatekeeper_triton_model, mapbox.gatekeeper_dir) == (
        BASE, "wildfire", tmp_path / "gatekeeper")
    assert (swir.model_name, swir.gatekeeper_triton_model, swir.gatekeeper_dir) == (
        f"{BASE}-sentinel2-swir", "wildfire_sentinel2_swir", tmp_path / "gatekeeper" / "lines" / "sentinel2-swir")
    assert swir.core_config().product == "sentinel2-swir" and mapbox.core_config().product == "mapbox"
    assert settings.gatekeeper_dir == tmp_path / "gatekeeper" and settings.product == "mapbox"
    with pytest.raises(ValueError, match="already"):
        swir.for_line("sentinel2-true-colour")
    with pytest.raises(ValueError, match="unknown imagery product"):
        GatekeeperSettings(state_dir=tmp_path, model_lines="mapbox,landsat")


def test_a_candidate_goes_to_its_own_products_line_only(tmp_path):
    lines = _lines(tmp_path)
    swir = _candidate("sentinel2-swir", f"{BASE}-sentinel2-swir")
    assert lines.on_candidate(swir) == ["sentinel2-swir:candidate"]
    assert lines.lines["mapbox"].seen == []
    assert lines.on_candidate(_candidate("mapbox", BASE)) == ["mapbox:candidate"]
    assert [k for k, _ in lines.lines["sentinel2-swir"].seen] == ["candidate"]


def test_a_candidate_of_a_product_without_a_line_is_refused_with_the_reason(tmp_path):
    lines = _lines(tmp_path, "mapbox")
    with pytest.raises(NoLine, match="'sentinel2-swir' has no model line here"):
        lines.on_candidate(_candidate("sentinel2-swir", f"{BASE}-sentinel2-swir"))
    with pytest.raises(NoLine, match="'landsat-9'"):  # a product the contract allows but no line knows
        lines.on_candidate(_candidate("landsat-9", f"{BASE}-landsat-9"))
    assert lines.lines["mapbox"].seen == []


def test_tiles_go_to_their_products_line_in_order_and_others_are_not_scored(tmp_path):
    lines = _lines(tmp_path)
    a, b, c, d = _tile(1), _tile(2, "sentinel2-swir"), _tile(3), _tile(4, "sentinel2-true-colour")
    assert lines.on_tiles([a, b, c, d]) == ["mapbox:tiles", "sentinel2-swir:tiles"]
    assert lines.lines["mapbox"].seen == [("tiles", [a.tile_id, c.tile_id])]
    assert lines.lines["sentinel2-swir"].seen == [("tiles", [b.tile_id])]
    assert lines.on_tile(b) == ["sentinel2-swir:tile"] and lines.on_tile(d) == []


def test_commands_go_to_the_line_of_the_model_they_name(tmp_path):
    lines = _lines(tmp_path)

    def command(model_name: str) -> ModelCommand:
        return ModelCommand.create(producer="test", command="rollback", model_name=model_name, requested_by="cli:a",
                                   expires_at=datetime.now(UTC) + timedelta(minutes=5))

    assert lines.on_command(command(f"{BASE}-sentinel2-swir")) == ["sentinel2-swir:command"]
    assert lines.on_command(command(BASE)) == ["mapbox:command"]
    # a name no enabled line registers: the Mapbox line answers (and refuses it, as today)
    assert lines.on_command(command("someone-else")) == ["mapbox:command"]
    assert lines.on_command(command(f"{BASE}-sentinel2-true-colour")) == ["mapbox:command"]


def test_relabels_and_labels_reach_every_line(tmp_path):
    lines = _lines(tmp_path)
    tile = _tile(5)
    relabel = TileRelabelled.create(producer="test", tile_id=tile.tile_id, action="retire",
                                    previous_label="nowildfire", fire_key="f2", matched_fire_key="f1",
                                    distance_km=1.0, reason="later fire")
    feedback = LabelFeedback.create(producer="test", tile_id=tile.tile_id, label="nowildfire",
                                    labelled_by="console:a")
    assert lines.on_relabels([relabel]) == ["mapbox:relabels", "sentinel2-swir:relabels"]
    assert lines.on_feedback(feedback) == ["mapbox:feedback", "sentinel2-swir:feedback"]
    assert lines.on_tick() == ["mapbox:tick", "sentinel2-swir:tick"]  # every line hears the clock


def test_without_the_mapbox_line_what_names_no_line_goes_to_the_first(tmp_path):
    lines = _lines(tmp_path, "sentinel2-swir")
    assert list(lines.lines) == ["sentinel2-swir"] and lines.first is lines.lines["sentinel2-swir"]
    assert lines.on_tiles([_tile(6)]) == []  # no Mapbox line: its tiles are not scored
