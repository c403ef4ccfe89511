"""Full fine-tuning at a tiny size: trains a copy, leaves the shared backbone alone, exports for Triton."""

import numpy as np

from emberwatch.ml.backbone import compile_backbone_openvino, embed, load_backbone, make_backbone_id
from emberwatch.ml.head import head_arrays, head_predict_numpy
from emberwatch.ml.settings import MLSettings
from services.trainer.accelerator import precision_policy, use_mixed_precision
from services.trainer.fine_tune import export_fine_tuned_backbone, fine_tune
from services.trainer.search_head import search_head
from tests.services.trainer.synth import scene


def _data(n: int, seed: int):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    return np.stack([scene(rng, 32, bool(label)) for label in y]), y


def test_fine_tune_trains_a_copy_and_exports_it(tmp_path):
    import keras

    bb = load_backbone(MLSettings(state_dir=tmp_path / "state", image_size=32))
    before = make_backbone_id(bb.model, 32)
    x_tr, y_tr = _data(24, 0)
    x_va, y_va = _data(8, 1)
    e_tr, e_va = embed(bb, x_tr), embed(bb, x_va)
    head = search_head(e_tr, y_tr, e_va, y_va, units_grid=[8], learning_rates=[0.003], dropout=0.1,
                       epochs=3, patience=2, batch_size=8, seed=0).model
    tuned = fine_tune(bb, head, x_tr, y_tr, x_va, y_va, layers=8, epochs=1, learning_rate=1e-3,
                      batch_size=8, mixed_precision=False, seed=0)

    assert make_backbone_id(bb.model, 32) == before == bb.backbone_id  # shared backbone untouched
    assert tuned.backbone.backbone_id != bb.backbone_id
    assert tuned.precision == "float32" and len(tuned.history["loss"]) == 1
    assert keras.mixed_precision.global_policy().name == "float32"

    full_p = tuned.full_model.predict(x_va.astype(np.float32), verbose=0)
    tuned_emb = embed(tuned.backbone, x_va)
    np.testing.assert_allclose(head_predict_numpy(head_arrays(tuned.head), tuned_emb), full_p, atol=1e-4)

    out = export_fine_tuned_backbone(tuned, tmp_path / "triton")
    compiled = compile_backbone_openvino(out / "backbone.onnx")
    ov_emb = compiled({"IMAGES": x_va.astype(np.float32)})[compiled.outputs[0]]
    np.testing.assert_allclose(head_predict_numpy(head_arrays(tuned.head), ov_emb), full_p, atol=1e-3)


def test_precision_policy_is_restored_and_auto_follows_the_device():
    import keras

    with precision_policy(True) as policy:
        assert policy == "mixed_float16" == keras.mixed_precision.global_policy().name
    assert keras.mixed_precision.global_policy().name == "float32"
    assert use_mixed_precision("on") and not use_mixed_precision("off")
    import tensorflow as tf

    assert use_mixed_precision("auto") == bool(tf.config.list_physical_devices("GPU"))
