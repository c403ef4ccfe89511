"""Where the backbone's weights come from: a file, the Keras cache (fetched once when online), or
a seeded random initialisation with a warning. This machine is offline: the fallback is real."""

from __future__ import annotations

import json
import logging
import time

import pytest

from emberwatch.ml.settings import MLSettings, fetch_imagenet_weights, keras_cache_weights


@pytest.fixture
def empty_keras_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    return tmp_path / "keras"


def test_the_keras_cache_is_found_under_keras_home(empty_keras_home):
    assert keras_cache_weights() == empty_keras_home / "models" / "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"


def test_an_explicit_file_that_does_not_exist_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="EMBERWATCH_BACKBONE_WEIGHTS"):
        MLSettings(state_dir=tmp_path, backbone_weights=tmp_path / "missing.h5").resolved_backbone_weights()


def test_an_explicit_file_wins(tmp_path, empty_keras_home):
    f = tmp_path / "w.h5"
    f.write_bytes(b"x")
    assert MLSettings(state_dir=tmp_path, backbone_weights=f).resolved_backbone_weights() == f


def test_a_cached_keras_file_is_used_without_downloading(tmp_path, empty_keras_home):
    cached = keras_cache_weights()
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"x")
    assert MLSettings(state_dir=tmp_path).resolved_backbone_weights() == cached


def test_offline_the_download_fails_cleanly_and_is_not_retried_at_once(tmp_path, empty_keras_home, caplog):
    marker = tmp_path / "backbone" / "download.json"
    caplog.set_level(logging.INFO)
    assert fetch_imagenet_weights(marker, timeout_s=10) is None  # no internet here
    assert "could not fetch" in caplog.text
    assert json.loads(marker.read_text())["failed_at"] <= time.time()
    assert not keras_cache_weights().exists()
    started = time.monotonic()
    assert MLSettings(state_dir=tmp_path).resolved_backbone_weights() is None  # remembered: no new attempt
    assert time.monotonic() - started < 1.0


def test_download_switched_off_means_random(tmp_path, empty_keras_home):
    assert MLSettings(state_dir=tmp_path, backbone_download=False).resolved_backbone_weights() is None
    assert not (tmp_path / "backbone" / "download.json").exists()


def test_offline_the_backbone_is_random_with_a_warning_and_says_so(tmp_path, empty_keras_home, caplog):
    from emberwatch.ml.backbone import load_backbone

    caplog.set_level(logging.WARNING)
    bb = load_backbone(MLSettings(state_dir=tmp_path, image_size=32, backbone_seed=3))
    assert bb.weights_source == "random(seed=3)"
    assert "RANDOMLY INITIALISED" in caplog.text
    again = load_backbone(MLSettings(state_dir=tmp_path, image_size=32, backbone_seed=3))
    assert again.backbone_id == bb.backbone_id and again.weights_source == "random(seed=3)"
