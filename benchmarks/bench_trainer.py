"""Time to a new candidate after N new tiles on top of M already-embedded ones, vs full retraining.

Emberwatch's trainer keeps every tile's backbone embedding (docs/architecture.md#compute-once), so a
retraining costs the new
tiles' forward passes plus a small head search. The reference project instead runs Keras ``fit`` of
backbone + head over all images for every epoch. Both sides run here on the same synthetic tiles,
each phase in its own process so its peak memory (VmHWM) is its own:

1. prepare   — write M+N tiles to a tile store, index the M old ones, embed them (the cold start);
2. ours      — index the N new tiles, then ``Trainer.train``: embed only the N new ones, search the head
               (units × learning rate, early stopping), log + register in a real MLflow server;
3. reference — ``fit`` of the full model (ResNet50 backbone + the same head) over all M+N images,
               images decoded every epoch; measured for ``--reference-epochs`` epochs and scaled to
               the epochs our best head trained (stated in the output).

Usage: python benchmarks/bench_trainer.py [--size 224] [--old 2000] [--new 200] [--json out.json]
Run it under the heavy lock: flock /tmp/emberwatch-heavy.lock python benchmarks/bench_trainer.py
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def peak_rss_gb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024 / 1024
    return float("nan")


def _settings(args):
    from services.trainer.settings import TrainerSettings

    return TrainerSettings(
        state_dir=Path(args.state), image_size=args.size, mlflow_tracking_uri=args.mlflow or "http://127.0.0.1:1",
        trainer_min_train_per_class=20, trainer_min_val_per_class=5, trainer_min_test_per_class=5,
        model_name="emberwatch-bench",
    )


def _tiles(args):
    import hashlib
    import io

    import numpy as np
    from PIL import Image

    from tests.services.trainer.synth import SynthTile, scene

    store = Path(args.state) / "tiles"
    manifest = Path(args.state) / "tiles.json"
    if manifest.exists():
        return [SynthTile(t["tile_id"], Path(t["path"]), t["label"], t["split"])
                for t in json.loads(manifest.read_text())]
    rng = np.random.default_rng(0)
    tiles = []
    for i in range(args.old + args.new):
        label = "wildfire" if i % 2 == 0 else "nowildfire"
        r = ((i // 2) * 7) % 10
        split = "train" if r < 7 else ("val" if r < 9 else "test")
        buf = io.BytesIO()
        Image.fromarray(scene(rng, args.size, label == "wildfire")).save(buf, format="JPEG", quality=90)
        data = buf.getvalue()
        tid = hashlib.sha256(data).hexdigest()
        path = store / tid[:2] / f"{tid}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        tiles.append(SynthTile(tid, path, label, split))
    manifest.write_text(json.dumps([{"tile_id": t.tile_id, "path": str(t.path), "label": t.label,
                                     "split": t.split} for t in tiles]))
    return tiles


def phase_prepare(args) -> dict:
    from services.trainer.pipeline import Trainer

    t0 = time.perf_counter()
    tiles = _tiles(args)
    t_write = time.perf_counter() - t0
    trainer = Trainer(_settings(args))
    for t in tiles[: args.old]:
        trainer.index.record(tile_id=t.tile_id, label=t.label, split=t.split, uri=t.uri)
    t0 = time.perf_counter()
    bb = trainer.backbone
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    embedded, hits, bad = trainer.embed_missing(trainer.index.all())
    t_embed = time.perf_counter() - t0
    trainer.index.mark_trained(trainer.index.max_seq())
    return {"write_s": t_write, "backbone_load_s": t_load, "embed_s": t_embed, "embedded": embedded,
            "unreadable": len(bad), "backbone_id": bb.backbone_id, "peak_rss_gb": peak_rss_gb()}


def phase_ours(args) -> dict:
    from services.trainer.pipeline import Trainer

    tiles = _tiles(args)
    trainer = Trainer(_settings(args))
    t0 = time.perf_counter()
    trainer.backbone  # noqa: B018 - loaded once per service lifetime, reported apart
    load_s = time.perf_counter() - t0
    for t in tiles[args.old:]:
        trainer.index.record(tile_id=t.tile_id, label=t.label, split=t.split, uri=t.uri)
    t0 = time.perf_counter()
    outcome = trainer.train("benchmark: 200 new tiles")
    total = time.perf_counter() - t0
    b = outcome.bundle
    return {"train_s": total, "backbone_load_s": load_s, "timings": outcome.timings, "embedded_new": outcome.embedded_new,
            "cache_hits": outcome.embedding_cache_hits, "version": outcome.candidate.version,
            "epochs_run": int(b.summary_metrics["epochs_run"]), "trials": len(b.trial_metrics) // 2,
            "units": b.params["units"], "val_accuracy": b.validation_metrics.get("val_accuracy"),
            "test_accuracy": b.summary_metrics.get("test_accuracy"), "peak_rss_gb": peak_rss_gb()}


def phase_reference(args) -> dict:
    import keras
    import numpy as np

    from emberwatch.ml import LABEL_INDEX
    from emberwatch.ml.backbone import load_backbone
    from emberwatch.ml.head import build_head, compose
    from emberwatch.ml.images import decode_image

    tiles = _tiles(args)
    bb = load_backbone(_settings(args))
    train = [t for t in tiles if t.split == "train"]
    val = [t for t in tiles if t.split == "val"]

    class Images(keras.utils.PyDataset):
        """Decode images from the tile store every epoch, like image_dataset_from_directory."""

        def __init__(self, items, batch):
            super().__init__()
            self.items, self.batch = items, batch

        def __len__(self):
            return (len(self.items) + self.batch - 1) // self.batch

        def __getitem__(self, i):
            part = self.items[i * self.batch:(i + 1) * self.batch]
            x = np.stack([decode_image(t.path.read_bytes(), args.size) for t in part]).astype(np.float32)
            y = np.asarray([LABEL_INDEX[t.label] for t in part])
            return x, y

    # The head needs a Normalization adapted on embeddings for a random backbone to learn
    # (docs/architecture.md#facts-the-code-relies-on);
    # give the reference the same head, adapted on a few embeddings (cost not counted).
    sample = Images(train[:32], 32)[0][0]
    head = build_head(bb.embedding_dim, args.units, 0.3, bb.infer(sample), seed=0)
    model = compose(bb.model, head)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    t0 = time.perf_counter()
    hist = model.fit(Images(train, 32), validation_data=Images(val, 32), epochs=args.reference_epochs,
                     verbose=0)
    elapsed = time.perf_counter() - t0
    return {"fit_s": elapsed, "epochs_measured": args.reference_epochs,
            "per_epoch_s": elapsed / args.reference_epochs, "images_per_epoch": len(train) + len(val),
            "val_accuracy_after": float(hist.history["val_accuracy"][-1]), "peak_rss_gb": peak_rss_gb()}


PHASES = {"prepare": phase_prepare, "ours": phase_ours, "reference": phase_reference}


def run_phase(name: str, args, extra: list[str] | None = None) -> dict:
    cmd = [sys.executable, __file__, "--phase", name, "--state", args.state, "--size", str(args.size),
           "--old", str(args.old), "--new", str(args.new), "--reference-epochs", str(args.reference_epochs),
           "--units", str(args.units)] + (extra or [])
    if args.mlflow:
        cmd += ["--mlflow", args.mlflow]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"phase {name} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--phase", choices=sorted(PHASES))
    ap.add_argument("--state")
    ap.add_argument("--mlflow")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--old", type=int, default=2000)
    ap.add_argument("--new", type=int, default=200)
    ap.add_argument("--reference-epochs", type=int, default=1)
    ap.add_argument("--units", type=int, default=256)
    ap.add_argument("--json")
    args = ap.parse_args()
    if args.phase:
        print(json.dumps(PHASES[args.phase](args)))
        return

    from rich.console import Console
    from rich.table import Table

    from emberwatch.stack import manage
    from tests.conftest import stack_settings

    console = Console()
    tmp = Path(tempfile.mkdtemp(prefix="bench-trainer-"))
    args.state = str(tmp / "state")
    stack = stack_settings(tmp / "stack", "mlflow")
    manage.up(stack)
    try:
        args.mlflow = stack.mlflow_tracking_uri
        console.print(f"size {args.size}px, {args.old} embedded + {args.new} new tiles; state {tmp}")
        prep = run_phase("prepare", args)
        console.print(f"prepare: {prep}")
        ours = run_phase("ours", args)
        console.print(f"ours: {ours}")
        args.units = int(ours["units"])
        ref = run_phase("reference", args)
        console.print(f"reference: {ref}")
    finally:
        manage.down(stack)
    epochs = ours["epochs_run"]
    ref_total = ref["per_epoch_s"] * epochs
    table = Table(title=f"Time to a new candidate: {args.new} new tiles on {args.old} embedded ({args.size}px, "
                        f"{os.cpu_count()} CPU)")
    for col in ("path", "backbone passes", "time (s)", "peak RSS (GB)", "speed-up"):
        table.add_column(col)
    table.add_row("Emberwatch: embed new + head search + MLflow register", str(ours["embedded_new"]),
                  f"{ours['train_s']:.1f}", f"{ours['peak_rss_gb']:.2f}", f"{ref_total / ours['train_s']:.1f}×")
    table.add_row(f"Reference: fit backbone+head, all images × {epochs} epochs "
                  f"(1 epoch measured: {ref['per_epoch_s']:.1f} s)",
                  str(ref["images_per_epoch"] * epochs), f"{ref_total:.1f}", f"{ref['peak_rss_gb']:.2f}", "1.0×")
    table.add_row(f"(cold start: embed the first {args.old} tiles once)", str(prep["embedded"]),
                  f"{prep['embed_s']:.1f}", f"{prep['peak_rss_gb']:.2f}", "")
    console.print(table)
    result = {"size": args.size, "old": args.old, "new": args.new, "prepare": prep, "ours": ours,
              "reference": ref, "reference_total_s": ref_total, "speedup": ref_total / ours["train_s"]}
    console.print_json(json.dumps(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
