"""Optional full fine-tuning: unfreeze the backbone's top layers and train backbone + head on images.

It never touches the shared frozen backbone (it trains a copy), so the embedding cache stays valid.
The result is a full model plus its own backbone id (the weights changed) and, for Triton, the
fine-tuned backbone exported to OpenVINO next to its head.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emberwatch.ml.backbone import Backbone, build_backbone, export_backbone_onnx, make_backbone_id
from services.trainer.accelerator import precision_policy
from services.trainer.search_head import class_weights

log = logging.getLogger(__name__)


@dataclass
class FineTuned:
    full_model: Any
    backbone: Backbone
    head: Any
    history: dict[str, list[float]]
    precision: str


def fine_tune(
    backbone: Backbone,
    head,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    layers: int,
    epochs: int,
    learning_rate: float,
    batch_size: int,
    mixed_precision: bool,
    seed: int,
) -> FineTuned:
    """Train a copy of backbone + head with the top ``layers`` of ResNet50 unfrozen (BatchNorm stays frozen)."""
    import keras

    size = backbone.image_size
    with precision_policy(mixed_precision) as policy:
        copy = build_backbone(size, None, seed)
        copy.set_weights(backbone.model.get_weights())
        head_copy = keras.models.clone_model(head)
        head_copy.set_weights(head.get_weights())
        copy.trainable = True
        base = copy.get_layer("resnet50")
        for layer in base.layers:
            layer.trainable = False
        for layer in base.layers[-layers:]:
            if not isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = True
        inputs = keras.Input((size, size, 3), dtype="float32", name="images")
        full = keras.Model(inputs, head_copy(copy(inputs, training=False)), name="classifier_finetuned")
        full.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
                     loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
        fit = full.fit(x_train.astype(np.float32), y_train,
                       validation_data=(x_val.astype(np.float32), y_val), epochs=epochs,
                       batch_size=batch_size, class_weight=class_weights(y_train), callbacks=[stop], verbose=0)
    # Serve in float32 whatever the training precision was: rebuild and copy the trained weights.
    with precision_policy(False):
        backbone32 = build_backbone(size, None, seed)
        backbone32.set_weights(copy.get_weights())
        backbone32.trainable = False
        head32 = keras.models.clone_model(head_copy)
        head32.set_weights(head_copy.get_weights())
        inputs = keras.Input((size, size, 3), dtype="float32", name="images")
        full32 = keras.Model(inputs, head32(backbone32(inputs)), name="classifier_finetuned")
    tuned = Backbone(model=backbone32, backbone_id=make_backbone_id(backbone32, size), image_size=size)
    history = {k: [float(v) for v in vals] for k, vals in fit.history.items()}
    log.info("fine-tuned", extra={"backbone_id": tuned.backbone_id, "epochs": len(history["loss"]),
                                  "precision": policy})
    return FineTuned(full_model=full32, backbone=tuned, head=head32, history=history, precision=policy)


def export_fine_tuned_backbone(tuned: FineTuned, triton_dir: Path) -> Path:
    """The fine-tuned backbone as ONNX in ``triton/backbone/`` (its head.npz names its id)."""
    return export_backbone_onnx(tuned.backbone, Path(triton_dir) / "backbone")
