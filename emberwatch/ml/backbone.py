"""The frozen ResNet50 backbone: built once, identified by its weights, cached on disk, exportable.

The model takes float32 RGB in [0, 255], shape (None, S, S, 3), input name ``images``; ResNet50's
``preprocess_input`` runs INSIDE the model (so every caller feeds the same thing). The embedding,
(None, 2816), joins three poolings of the one ResNet50 (``POOLING``): the global average of its last
stage (the usual 2048-d transfer embedding) and the global MAXIMUM of two early stages (512 + 256):
a fire first seen is a few pixels of flame line and char in a large scene, which an average over the
whole image dilutes and a maximum keeps (on the simulated pairs of ``benchmarks/imagery.md`` the
random backbone's average alone scored 75 %, with the maxima 80 %). Its id is
``resnet50-<sha256(pooling + all weights)[:12]>-<S>``: identical construction gives the identical
id, so embeddings can be cached under it; another pooling is another id.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emberwatch.common.atomic_files import atomic_write_text
from emberwatch.ml.settings import MLSettings

log = logging.getLogger(__name__)

# (layer of ResNet50, pooling, channels): what the embedding is made of, in order.
TAPS = (("avg_pool", "avg", 2048), ("conv3_block4_out", "max", 512), ("conv2_block3_out", "max", 256))
POOLING = "+".join(f"{pool}({layer})" for layer, pool, _ in TAPS)
EMBEDDING_DIM = sum(ch for _, _, ch in TAPS)
INPUT_NAME = "images"
OUTPUT_NAME = "embeddings"
WEIGHTS_FILE = "backbone.weights.h5"


def _keras():
    import keras

    return keras


def _preprocess_layer_class():
    keras = _keras()

    @keras.saving.register_keras_serializable(package="emberwatch")
    class ResNet50Preprocess(keras.layers.Layer):
        """``keras.applications.resnet50.preprocess_input`` as a layer (RGB→BGR, ImageNet means)."""

        def call(self, inputs):
            return keras.applications.resnet50.preprocess_input(inputs)

        def compute_output_shape(self, input_shape):
            return input_shape

    return ResNet50Preprocess


_PREPROCESS: Any = None


def preprocess_layer():
    global _PREPROCESS
    if _PREPROCESS is None:
        _PREPROCESS = _preprocess_layer_class()
    return _PREPROCESS(name="preprocess")


def seeded_initialisation(model, seed: int) -> None:
    """Re-draw every kernel of ``model`` from a generator of its own (Glorot uniform, as Keras
    initialises ResNet50's convolutions), so a random backbone depends on ``seed`` alone.

    Seeding Keras' global generators is not enough: in a service, other threads draw from the same
    global ``random`` while the model is built, and two processes built different "seed 0" backbones
    (the gatekeeper then refused every head trained by the trainer: another backbone id). Biases,
    BatchNorm scales/offsets and moving statistics are constants at initialisation and stay as built.
    """
    for i, w in enumerate(model.weights):
        shape = tuple(int(d) for d in w.shape)
        if len(shape) < 2:
            continue
        receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
        fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        rng = np.random.default_rng([seed, i])
        w.assign(rng.uniform(-limit, limit, shape).astype(np.float32))


def build_backbone(image_size: int, weights_path: str | Path | None, seed: int = 0, *,
                   initialise: bool = True):
    """ResNet50 (notop) with preprocessing inside and the pooled taps of ``TAPS``; frozen. The
    ResNet50 with its taps is the layer named ``resnet50`` (its layers are Keras' own, so a ResNet50
    weights file loads as usual). Random init depends on ``seed`` alone (``seeded_initialisation``);
    ``initialise=False`` skips it for a model whose weights are loaded right after."""
    keras = _keras()
    inputs = keras.Input((image_size, image_size, 3), dtype="float32", name=INPUT_NAME)
    x = preprocess_layer()(inputs)
    base = keras.applications.ResNet50(
        include_top=False,
        weights=str(weights_path) if weights_path is not None else None,
        input_shape=(image_size, image_size, 3),
        pooling="avg",
        name="resnet50_application",
    )
    taps = keras.Model(base.inputs, [base.get_layer(layer).output for layer, _, _ in TAPS], name="resnet50")
    pooled = []
    for (layer, pool, _), out in zip(TAPS, taps(x), strict=True):
        if pool == "max":
            out = keras.layers.GlobalMaxPooling2D(name=f"max_{layer}")(out)
        pooled.append(out)
    x = keras.layers.Concatenate(name="pooled")(pooled)
    outputs = keras.layers.Activation("linear", dtype="float32", name=OUTPUT_NAME)(x)
    model = keras.Model(inputs, outputs, name="backbone")
    if weights_path is None and initialise:
        seeded_initialisation(model, seed)
    model.trainable = False
    return model


def weights_digest(model) -> str:
    """sha256 over the pooling and every weight's bytes (order of ``model.weights``)."""
    h = hashlib.sha256(POOLING.encode())
    for w in model.weights:
        h.update(np.ascontiguousarray(np.asarray(w, dtype=np.float32)).tobytes())
    return h.hexdigest()


def make_backbone_id(model, image_size: int) -> str:
    return f"resnet50-{weights_digest(model)[:12]}-{image_size}"


@dataclass
class Backbone:
    model: Any
    backbone_id: str
    image_size: int
    embedding_dim: int = EMBEDDING_DIM
    weights_source: str = "unknown"  # "imagenet", "file:<name>" or "random(seed=N)"
    _infer: Any = field(default=None, repr=False, compare=False)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """One forward pass of a float32 batch (compiled once per backbone)."""
        if self._infer is None:
            import tensorflow as tf

            model = self.model
            spec = tf.TensorSpec((None, self.image_size, self.image_size, 3), tf.float32)

            @tf.function(input_signature=[spec])
            def _run(x):
                return model(x, training=False)

            self._infer = _run
        return np.asarray(self._infer(batch), dtype=np.float32)


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _recipe(settings: MLSettings, weights: Path | None) -> str:
    keras = _keras()
    source = f"file:{_file_sha256(weights)}" if weights is not None else f"random:{settings.backbone_seed}"
    text = f"{source}|{settings.image_size}|{POOLING}|keras-{keras.__version__}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def backbone_root(settings: MLSettings) -> Path:
    return Path(settings.state_dir) / "backbone"


def weights_source(settings: MLSettings, weights: Path | None) -> str:
    """What a backbone stands on, in words every candidate event and ``emberwatch models`` show."""
    from emberwatch.ml.settings import keras_cache_weights

    if weights is None:
        return f"random(seed={settings.backbone_seed})"
    if settings.backbone_weights is None and Path(weights) == keras_cache_weights():
        return "imagenet"
    return f"file:{Path(weights).name}"


def load_backbone(settings: MLSettings) -> Backbone:
    """The backbone for ``settings``: from the on-disk cache when this recipe was built before."""
    weights = settings.resolved_backbone_weights()
    source = weights_source(settings, weights)
    size = settings.image_size
    root = backbone_root(settings)
    recipe_file = root / "recipes" / f"{_recipe(settings, weights)}.json"
    if weights is None:
        log.warning(
            "no ResNet50 ImageNet weights (EMBERWATCH_BACKBONE_WEIGHTS unset, none in the Keras cache, "
            "and they could not be fetched): using a RANDOMLY INITIALISED backbone (seed %d); its "
            "embeddings still separate the scenes after standardisation, but are much weaker than "
            "ImageNet features",
            settings.backbone_seed,
            extra={"seed": settings.backbone_seed},
        )
    if recipe_file.is_file():
        cached_id = json.loads(recipe_file.read_text())["backbone_id"]
        cached = root / cached_id / WEIGHTS_FILE
        if cached.is_file():
            model = build_backbone(size, None, settings.backbone_seed, initialise=False)
            model.load_weights(cached)
            model.trainable = False
            if make_backbone_id(model, size) == cached_id:
                log.info("backbone loaded from cache", extra={"backbone_id": cached_id, "weights": source})
                return Backbone(model=model, backbone_id=cached_id, image_size=size, weights_source=source)
            log.warning("cached backbone does not match its id; rebuilding", extra={"backbone_id": cached_id})
    model = build_backbone(size, weights, settings.backbone_seed)
    backbone_id = make_backbone_id(model, size)
    _save_cache(root, backbone_id, model, size, weights, settings.backbone_seed)
    recipe_file.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(recipe_file, json.dumps({"backbone_id": backbone_id}))
    log.info("backbone built", extra={"backbone_id": backbone_id, "weights": source})
    return Backbone(model=model, backbone_id=backbone_id, image_size=size, weights_source=source)


def _save_cache(root: Path, backbone_id: str, model, size: int, weights: Path | None, seed: int) -> None:
    target = root / backbone_id
    if (target / WEIGHTS_FILE).is_file():
        return
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{backbone_id}.", dir=root))
    try:
        model.save_weights(tmp / WEIGHTS_FILE)
        (tmp / "backbone.json").write_text(json.dumps({
            "backbone_id": backbone_id, "image_size": size, "embedding_dim": EMBEDDING_DIM,
            "weights_source": str(weights) if weights else f"random(seed={seed})",
        }, indent=2))
        try:
            os.replace(tmp, target)
        except OSError:  # another process won the race: its copy is identical
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def embed(backbone: Backbone, images_uint8: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Embeddings (N, EMBEDDING_DIM) float32 of uint8 images (N, S, S, 3)."""
    images = np.asarray(images_uint8)
    n = images.shape[0]
    out = np.empty((n, backbone.embedding_dim), dtype=np.float32)
    if n == 0:
        return out
    expected = (backbone.image_size, backbone.image_size, 3)
    if images.shape[1:] != expected:
        raise ValueError(f"images must have shape (N, {expected}), got {images.shape}")
    for start in range(0, n, batch_size):
        batch = images[start:start + batch_size].astype(np.float32)
        out[start:start + len(batch)] = backbone.infer(batch)
    return out


# OpenVINO's CPU plugin runs an FP32 model in bfloat16 by default where the CPU has AVX512_BF16 or
# AMX: on such a machine (Zen 4) it moved the embeddings by 0.4 % of their range, far past infra
# validation's tolerance. The precision is the project's choice, not the CPU's: FP32 unless asked.
OPENVINO_CPU_CONFIG = {"INFERENCE_PRECISION_HINT": "f32"}


def compile_backbone_openvino(xml_path: str | Path, **config: Any):
    """The exported backbone (``backbone.onnx`` or an IR ``backbone.xml``) compiled for the CPU at
    FP32 (``OPENVINO_CPU_CONFIG``), plus ``config``."""
    import openvino as ov

    return ov.Core().compile_model(str(xml_path), "CPU", {**OPENVINO_CPU_CONFIG, **config})


# The one exported artifact of the backbone: ONNX, FP32, named for Triton. The local stack's python
# backend compiles it with OpenVINO on the CPU; a deployed Triton serves the same file with its native
# onnxruntime backend on the GPU (TensorRT FP16). Its tensors carry the names Triton's ``backbone``
# model uses, so the ``wildfire`` BLS model calls either the same way.
ONNX_FILE = "backbone.onnx"
TRITON_INPUT, TRITON_OUTPUT = "IMAGES", "EMBEDDINGS"


def _rename_onnx_tensor(graph, old: str, new: str) -> None:
    for node in graph.node:
        node.input[:] = [new if n == old else n for n in node.input]
        node.output[:] = [new if n == old else n for n in node.output]
    for value in (*graph.input, *graph.output, *graph.value_info):
        if value.name == old:
            value.name = new


def export_backbone_onnx(backbone: Backbone, out_dir: str | Path, *, cache_root: Path | None = None) -> Path:
    """Write ``backbone.onnx`` (FP32; input IMAGES (N, S, S, 3) float32 RGB in [0, 255], output
    EMBEDDINGS (N, D)) and ``backbone.json`` into ``out_dir``; return it. With ``cache_root`` (the
    backbone cache), the export is made once per backbone id and copied after that: it takes about
    25 s and up to 9 GB (tf2onnx through Keras' exporter)."""
    import onnx

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cached = cache_root / backbone.backbone_id / ONNX_FILE if cache_root is not None else None
    if cached is not None and cached.is_file():
        shutil.copy2(cached, out / ONNX_FILE)
    else:
        import tensorflow as tf

        s = backbone.image_size
        with tempfile.TemporaryDirectory(prefix="backbone-onnx-") as tmp:
            raw = Path(tmp) / "raw.onnx"
            spec = [tf.TensorSpec((None, s, s, 3), tf.float32, name=TRITON_INPUT)]
            backbone.model.export(str(raw), format="onnx", input_signature=spec, verbose=False)
            model = onnx.load(str(raw))
        graph = model.graph
        if graph.input[0].name != TRITON_INPUT:
            _rename_onnx_tensor(graph, graph.input[0].name, TRITON_INPUT)
        _rename_onnx_tensor(graph, graph.output[0].name, TRITON_OUTPUT)
        for value in (graph.input[0], graph.output[0]):  # a named batch dimension, the rest fixed
            value.type.tensor_type.shape.dim[0].dim_param = "batch"
        model.doc_string = f"emberwatch backbone {backbone.backbone_id} ({POOLING})"
        onnx.checker.check_model(model)
        onnx.save(model, str(out / ONNX_FILE))
        if cached is not None and cached.parent.is_dir():
            tmp_copy = cached.with_name(f".{ONNX_FILE}.{os.getpid()}.tmp")
            shutil.copy2(out / ONNX_FILE, tmp_copy)
            os.replace(tmp_copy, cached)
    _write_backbone_meta(backbone, out, {"format": "onnx", "file": ONNX_FILE,
                                         "input": TRITON_INPUT, "output": TRITON_OUTPUT})
    return out


def _write_backbone_meta(backbone: Backbone, out: Path, fields: dict[str, Any]) -> None:
    (out / "backbone.json").write_text(json.dumps({
        "backbone_id": backbone.backbone_id, "image_size": backbone.image_size,
        "embedding_dim": backbone.embedding_dim, "dtype": "float32", "precision": "fp32",
        "weights_source": backbone.weights_source, **fields,
    }, indent=2))


def export_backbone_openvino(backbone: Backbone, out_dir: str | Path) -> Path:
    """Write ``backbone.xml``/``backbone.bin`` (OpenVINO IR, FP32) and ``backbone.json``; return out_dir."""
    import openvino as ov

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="backbone-savedmodel-") as tmp:
        saved = Path(tmp) / "saved_model"
        backbone.model.export(str(saved), format="tf_saved_model", verbose=False)
        ov_model = ov.convert_model(str(saved))
    ov_model.inputs[0].get_tensor().set_names({INPUT_NAME})
    ov_model.outputs[0].get_tensor().set_names({OUTPUT_NAME})
    s = backbone.image_size
    ov_model.reshape({INPUT_NAME: ov.PartialShape([-1, s, s, 3])})
    ov.save_model(ov_model, str(out / "backbone.xml"), compress_to_fp16=False)
    _write_backbone_meta(backbone, out, {"format": "openvino", "file": "backbone.xml",
                                         "input": INPUT_NAME, "output": OUTPUT_NAME})
    return out
