import json
import logging

import numpy as np
import pytest

from emberwatch.ml import backbone as bb
from emberwatch.ml.settings import MLSettings

from .conftest import SIZE


def _images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, SIZE, SIZE, 3), dtype=np.uint8)


def test_backbone_shape_id_and_frozen(backbone):
    assert backbone.image_size == SIZE and backbone.embedding_dim == bb.EMBEDDING_DIM == 2048 + 512 + 256
    assert backbone.backbone_id.startswith("resnet50-") and backbone.backbone_id.endswith(f"-{SIZE}")
    assert len(backbone.backbone_id.split("-")[1]) == 12
    assert backbone.model.input_shape == (None, SIZE, SIZE, 3)
    assert backbone.model.output_shape == (None, bb.EMBEDDING_DIM)
    assert backbone.model.inputs[0].name == "images"
    assert not backbone.model.trainable and not backbone.model.trainable_weights
    assert backbone.backbone_id == bb.make_backbone_id(backbone.model, SIZE)


def test_preprocessing_is_inside_the_model(backbone):
    import keras

    x = _images(2).astype(np.float32)
    base = backbone.model.get_layer("resnet50")
    last, conv3, conv2 = (np.asarray(t) for t in base(keras.applications.resnet50.preprocess_input(x.copy()),
                                                         training=False))
    manual = np.concatenate([last, conv3.max(axis=(1, 2)), conv2.max(axis=(1, 2))], axis=1)
    np.testing.assert_allclose(bb.embed(backbone, x.astype(np.uint8)), manual, atol=1e-4)


def test_embedding_is_the_last_stage_average_and_early_stage_maxima(backbone):
    """The maxima keep a small bright spot that the average dilutes: one flame-coloured 3×3 patch in
    a flat scene moves the early-stage maxima far more, relative to their spread, than the average."""
    flat = np.full((1, SIZE, SIZE, 3), 90, np.uint8)
    spot = flat.copy()
    spot[0, 30:33, 30:33] = (255, 200, 90)
    a, b = bb.embed(backbone, flat)[0], bb.embed(backbone, spot)[0]
    last = slice(0, 2048)
    early = slice(2048, bb.EMBEDDING_DIM)
    change = lambda s: np.abs(b[s] - a[s]).mean() / (np.abs(a[s]).mean() + 1e-6)  # noqa: E731
    assert bb.POOLING == "avg(avg_pool)+max(conv3_block4_out)+max(conv2_block3_out)"
    assert change(early) > change(last)


def test_cached_on_disk_and_reloaded_with_same_id(backbone, ml_settings, caplog):
    folder = bb.backbone_root(ml_settings) / backbone.backbone_id
    assert (folder / bb.WEIGHTS_FILE).is_file()
    meta = json.loads((folder / "backbone.json").read_text())
    assert meta["backbone_id"] == backbone.backbone_id and meta["image_size"] == SIZE
    with caplog.at_level(logging.INFO, logger="emberwatch.ml.backbone"):
        again = bb.load_backbone(ml_settings)
    assert again.backbone_id == backbone.backbone_id
    assert any("loaded from cache" in r.getMessage() for r in caplog.records)
    assert any(r.levelno == logging.WARNING and "RANDOMLY INITIALISED" in r.getMessage()
               for r in caplog.records)
    x = _images(3)
    np.testing.assert_allclose(bb.embed(again, x), bb.embed(backbone, x), atol=1e-5)


def test_identical_construction_gives_identical_id_and_seed_changes_it():
    a = bb.build_backbone(SIZE, None, 0)
    b = bb.build_backbone(SIZE, None, 0)
    c = bb.build_backbone(SIZE, None, 1)
    assert bb.make_backbone_id(a, SIZE) == bb.make_backbone_id(b, SIZE)
    assert bb.make_backbone_id(a, SIZE) != bb.make_backbone_id(c, SIZE)


def test_other_threads_drawing_random_numbers_do_not_change_the_backbone():
    """In a service, other threads use Python's and numpy's global generators while the backbone is
    built; the random backbone must not depend on them (the trainer and the gatekeeper must agree)."""
    import random
    import threading

    expected = bb.make_backbone_id(bb.build_backbone(SIZE, None, 0), SIZE)
    stop = threading.Event()

    def noise():
        while not stop.is_set():
            random.random()
            np.random.random()

    worker = threading.Thread(target=noise, daemon=True)
    worker.start()
    try:
        random.seed(12345)
        np.random.seed(54321)
        got = bb.make_backbone_id(bb.build_backbone(SIZE, None, 0), SIZE)
    finally:
        stop.set()
        worker.join()
    assert got == expected


def test_configured_weights_file_is_used(tmp_path, backbone):
    source = bb.build_backbone(SIZE, None, 7)
    weights = tmp_path / "resnet50_notop.weights.h5"
    source.get_layer("resnet50").save_weights(weights)
    settings = MLSettings(state_dir=tmp_path / "state", image_size=SIZE, backbone_weights=weights)
    loaded = bb.load_backbone(settings)
    assert loaded.backbone_id == bb.make_backbone_id(source, SIZE)
    assert loaded.backbone_id != backbone.backbone_id


def test_missing_weights_file_is_a_clear_error(tmp_path):
    settings = MLSettings(state_dir=tmp_path, image_size=SIZE, backbone_weights=tmp_path / "nope.h5")
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        bb.load_backbone(settings)


def test_embed_is_batch_independent_and_checks_shape(backbone):
    x = _images(5, seed=3)
    np.testing.assert_allclose(bb.embed(backbone, x, batch_size=2), bb.embed(backbone, x, batch_size=5),
                               atol=1e-4)
    assert bb.embed(backbone, x[:0]).shape == (0, bb.EMBEDDING_DIM)
    with pytest.raises(ValueError, match="shape"):
        bb.embed(backbone, np.zeros((1, SIZE + 1, SIZE, 3), np.uint8))


def test_export_openvino_matches_keras(backbone, tmp_path):
    out = bb.export_backbone_openvino(backbone, tmp_path / "ov")
    meta = json.loads((out / "backbone.json").read_text())
    assert meta == {"backbone_id": backbone.backbone_id, "image_size": SIZE, "embedding_dim": bb.EMBEDDING_DIM,
                    "input": "images", "output": "embeddings", "dtype": "float32", "precision": "fp32",
                    "format": "openvino", "file": "backbone.xml", "weights_source": "random(seed=0)"}
    compiled = bb.compile_backbone_openvino(out / "backbone.xml")
    x = _images(3, seed=5)
    got = compiled({"images": x.astype(np.float32)})[compiled.outputs[0]]
    want = bb.embed(backbone, x)
    assert got.shape == (3, bb.EMBEDDING_DIM)
    assert np.abs(got - want).max() <= 1e-4 * max(1.0, np.abs(want).max())


def test_export_onnx_matches_keras_in_onnxruntime_and_openvino_and_is_made_once(backbone, tmp_path):
    """The one exported artifact: named for Triton, a free batch size, the same numbers as Keras in
    ONNX Runtime (what a GPU Triton runs) and in OpenVINO (what the local python backend runs)."""
    import onnx
    import onnxruntime as ort

    cache = tmp_path / "cache"
    (cache / backbone.backbone_id).mkdir(parents=True)
    out = bb.export_backbone_onnx(backbone, tmp_path / "onnx", cache_root=cache)
    meta = json.loads((out / "backbone.json").read_text())
    assert (meta["format"], meta["file"], meta["input"], meta["output"], meta["precision"]) == (
        "onnx", "backbone.onnx", "IMAGES", "EMBEDDINGS", "fp32")
    model = onnx.load(str(out / "backbone.onnx"))
    [inp], [outp] = model.graph.input, model.graph.output
    assert (inp.name, outp.name) == ("IMAGES", "EMBEDDINGS")
    assert [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim] == ["batch", SIZE, SIZE, 3]
    x = _images(3, seed=5).astype(np.float32)
    want = bb.embed(backbone, x.astype(np.uint8))
    session = ort.InferenceSession(str(out / "backbone.onnx"), providers=["CPUExecutionProvider"])
    got_ort = session.run(["EMBEDDINGS"], {"IMAGES": x})[0]
    compiled = bb.compile_backbone_openvino(out / "backbone.onnx")
    got_ov = compiled({"IMAGES": x})[compiled.outputs[0]]
    for got in (got_ort, got_ov):
        assert got.shape == (3, bb.EMBEDDING_DIM)
        assert np.abs(got - want).max() <= 1e-4 * max(1.0, np.abs(want).max())
    # made once per backbone id: the second export copies the cached file
    cached = cache / backbone.backbone_id / "backbone.onnx"
    assert cached.read_bytes() == (out / "backbone.onnx").read_bytes()
    model.doc_string = "the cached copy"
    onnx.save(model, str(cached))
    again = bb.export_backbone_onnx(backbone, tmp_path / "again", cache_root=cache)
    assert onnx.load(str(again / "backbone.onnx")).doc_string == "the cached copy"


def test_another_process_builds_the_same_id(backbone, tmp_path):
    """A second service (e.g. the gatekeeper) with its own state dir gets the same backbone id."""
    import os
    import subprocess
    import sys

    code = ("from emberwatch.ml.settings import MLSettings; from emberwatch.ml.backbone import load_backbone; "
            f"print(load_backbone(MLSettings(state_dir={str(tmp_path)!r}, image_size={SIZE})).backbone_id)")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip().splitlines()[-1] == backbone.backbone_id
