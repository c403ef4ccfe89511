"""Make real candidates without the trainer service: emberwatch.ml backbone + heads, MLflow runs.

Images are synthetic 32 px scenes: "nowildfire" is green/brown noise, "wildfire" adds a dark burn
patch with an orange rim. A head is built analytically so its quality is chosen, not hoped for:
Normalization (adapted on embeddings) -> Dense(2) that projects on the direction separating the two
classes, with a threshold that sets the recall -> Dense(2, softmax).
"""

from __future__ import annotations

import io
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from emberwatch.ml import CLASSES
from emberwatch.ml.backbone import Backbone, embed, load_backbone
from emberwatch.ml.head import build_head, compose, export_head_npz
from emberwatch.ml.settings import MLSettings

IMAGE_SIZE = 32


def scene(rng: np.random.Generator, wildfire: bool, size: int = IMAGE_SIZE) -> np.ndarray:
    base = np.array([60, 110, 50], dtype=np.float32) + rng.normal(0, 12, 3)
    img = base + rng.normal(0, 18, (size, size, 3))
    if wildfire:
        cx, cy = rng.integers(size // 4, 3 * size // 4, 2)
        r = rng.integers(size // 5, size // 3)
        yy, xx = np.mgrid[:size, :size]
        d = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
        img[d < r] = np.array([35, 25, 20]) + rng.normal(0, 8, ((d < r).sum(), 3))
        rim = (d >= r) & (d < r + 2)
        img[rim] = np.array([220, 110, 30]) + rng.normal(0, 15, (rim.sum(), 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def scenes(seed: int, n_each: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.array([1] * n_each + [0] * n_each)
    return np.stack([scene(rng, bool(y)) for y in labels]), labels


def encode(img: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format=fmt)
    return buf.getvalue()


def write_tiles(root: Path, images: np.ndarray, labels: np.ndarray, prefix: str) -> list[dict]:
    """Tiles in the tile store at ``root`` (the readers' EMBERWATCH_TILER_TILE_ROOT): [{tile_id, label,
    uri}] (test_split.json's format). Each PNG carries ``prefix`` and its index in a text chunk, so
    equal images are distinct tiles, each with the sha256 of its own bytes as its id."""
    from PIL.PngImagePlugin import PngInfo

    from emberwatch.common.tile_store import TileStore

    store = TileStore(root)
    out = []
    for i, (img, y) in enumerate(zip(images, labels)):
        info = PngInfo()
        info.add_text("emberwatch-test", f"{prefix}-{i}")
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="PNG", pnginfo=info)
        stored = store.put(buf.getvalue(), "png")
        out.append({"tile_id": stored.tile_id, "label": CLASSES[int(y)], "uri": stored.uri})
    return out


@dataclass
class World:
    """The backbone and the data every candidate of a test shares."""

    backbone: Backbone
    train_emb: np.ndarray
    train_labels: np.ndarray
    known_images: np.ndarray
    test_split: list[dict]


def make_world(state_dir: Path, tiles_dir: Path, *, n_train_each: int = 30, n_test_each: int = 30) -> World:
    bb = load_backbone(MLSettings(state_dir=state_dir, image_size=IMAGE_SIZE))
    train, train_y = scenes(1, n_train_each)
    test, test_y = scenes(2, n_test_each)
    known, _ = scenes(3, 4)
    return World(backbone=bb, train_emb=embed(bb, train), train_labels=train_y, known_images=known,
                 test_split=write_tiles(tiles_dir, test, test_y, "test"))


def analytic_head(world: World, quantile: float, *, scale: float = 4.0):
    """A Keras head whose wildfire threshold sits at ``quantile`` of the training positives' scores
    (0.0 -> nearly every positive caught; 0.5 -> about half of them missed)."""
    emb, y = world.train_emb, world.train_labels
    head = build_head(emb.shape[1], 2, 0.0, emb, seed=0)
    mean, std = emb.mean(0), np.sqrt(emb.var(0)) + 1e-3
    z = (emb - mean) / std
    direction = z[y == 1].mean(0) - z[y == 0].mean(0)
    direction /= np.linalg.norm(direction)
    scores = z @ direction
    threshold = float(np.quantile(scores[y == 1], quantile))
    spread = float(scores.std()) or 1.0
    # normalisation inside the head uses the adapted mean/variance: rescale the direction to it
    norm = head.get_layer("normalize")
    v = np.asarray(norm.variance).reshape(-1)
    m = np.asarray(norm.mean).reshape(-1)
    w_in = direction * (np.sqrt(np.maximum(v, 1e-7)) / std)  # so x_norm @ w_in == z @ direction
    b_in = float(((m - mean) / std) @ direction)
    w1 = np.stack([w_in, -w_in], axis=1).astype(np.float32) * (scale / spread)
    b1 = (np.array([b_in - threshold, threshold - b_in]) * (scale / spread)).astype(np.float32)
    head.get_layer("hidden").set_weights([w1, b1])
    head.get_layer("logits").set_weights([np.array([[-1, 1], [1, -1]], np.float32), np.zeros(2, np.float32)])
    return head


def log_candidate(tracking_uri: str, model_name: str, world: World, head, *,
                  corrupt: str | None = None, trained_on: list[str] = ()) -> tuple[str, str, str]:
    """Log the contract's artifacts to a new MLflow run and register a version. Returns
    (version, run_id, artifact_uri). ``corrupt``: "npz" (junk head.npz) or "probs" (wrong Keras
    outputs in known_images.npz). ``trained_on``: tile ids the run's lineage lists in its train split."""
    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri, registry_uri=tracking_uri)
    mlflow.set_tracking_uri(tracking_uri)
    exp = client.get_experiment_by_name("gatekeeper-tests")
    exp_id = exp.experiment_id if exp else client.create_experiment("gatekeeper-tests")
    run = client.create_run(exp_id)
    run_id = run.info.run_id
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        export_head_npz(head, root / "triton", backbone_id=world.backbone.backbone_id, image_size=IMAGE_SIZE)
        if corrupt == "npz":
            (root / "triton" / "head.npz").write_bytes(b"this is not an npz archive")
        probs = compose(world.backbone.model, head).predict(world.known_images.astype(np.float32), verbose=0)
        if corrupt == "probs":
            probs = probs[:, ::-1]
        (root / "validation").mkdir()
        np.savez(root / "validation" / "known_images.npz", images=world.known_images,
                 probs=np.asarray(probs, np.float32), tile_ids=np.array([f"k{i}" for i in range(len(probs))]))
        (root / "test_split.json").write_text(json.dumps(world.test_split))
        client.log_artifacts(run_id, str(root / "triton"), "triton")
        client.log_artifacts(run_id, str(root / "validation"), "validation")
        client.log_artifact(run_id, str(root / "test_split.json"))
        lineage = [{"tile_id": t["tile_id"], "label": t["label"], "split": "test"} for t in world.test_split]
        lineage += [{"tile_id": t, "label": "wildfire", "split": "train"} for t in trained_on]
        (root / "lineage").mkdir()
        (root / "lineage" / "tiles.json").write_text(json.dumps(lineage))
        client.log_artifacts(run_id, str(root / "lineage"), "lineage")
    client.set_tag(run_id, "backbone_id", world.backbone.backbone_id)
    client.set_terminated(run_id)
    try:
        client.create_registered_model(model_name)
    except Exception:  # noqa: BLE001 - already registered
        pass
    artifact_uri = f"runs:/{run_id}/triton"
    mv = client.create_model_version(model_name, artifact_uri, run_id=run_id)
    client.set_registered_model_alias(model_name, "challenger", mv.version)
    return str(mv.version), run_id, artifact_uri
