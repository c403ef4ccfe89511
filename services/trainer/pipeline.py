"""One training, start to registered candidate (blocking: the service runs it in a worker thread).

A training is of one model line: the tiles of one imagery product, registered under that line's model
name (``emberwatch.contracts.products.model_name_for``; docs/architecture.md#model-lines).

1. embed the tiles the cache has not seen (unreadable ones skipped and counted);
2. check the data (minimum examples per class and split) — no training on data that fails;
3. if this exact training (dataset digest + backbone + search config) is already registered, reuse it;
4. search the head, evaluate, run the leakage check (services/trainer/check_leakage.py), write the
   artifacts, publish to MLflow (retried, never half-registered).

The hand statistics of each tile (for the leakage check) are computed from the same decoded image as
its embedding and cached beside the embeddings, keyed by the statistics' version and image size.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from emberwatch.contracts.products import MAPBOX
from emberwatch.ml.backbone import Backbone, embed, load_backbone
from emberwatch.ml.head import compose
from emberwatch.ml.image_statistics import STATISTICS, statistics_matrix
from services.trainer import metrics as m
from services.trainer.accelerator import device_name, use_mixed_precision
from services.trainer.artifacts import pick_known, write_artifacts
from services.trainer.check_leakage import LeakageResult, SplitData, check_leakage
from services.trainer.dataset import by_split, check_dataset, dataset_digest, labels_of
from services.trainer.embedding_store import EmbeddingStore
from services.trainer.evaluate import confusion, plot_confusion, plot_training_curves, split_metrics
from services.trainer.fine_tune import export_fine_tuned_backbone, fine_tune
from services.trainer.models import TileRecord, TrainingBundle, TrainingOutcome
from services.trainer.physics_baseline import TileIndices
from services.trainer.read_tiles import read_images
from services.trainer.registry import MlflowPublisher
from services.trainer.search_head import search_head
from services.trainer.settings import TrainerSettings
from services.trainer.tile_index import TileIndex
from services.trainer.visible_tiles import apply_policy, leave_out_hidden

log = logging.getLogger(__name__)

STATISTICS_VERSION = "hand-v1"  # bump when emberwatch.ml.image_statistics changes its definitions


def keep_clear_decisions(records, images, probs, n: int, margin: float):
    """The first ``n`` known images whose P(wildfire) is at least ``margin`` from 0.5: infra
    validation demands the same decision on each, which is only defined away from the threshold."""
    p = np.asarray(probs, dtype=np.float32)
    keep = [i for i in range(len(records)) if abs(float(p[i, 1]) - 0.5) >= margin][:n]
    if len(keep) < min(n, len(records)):  # too few clear ones: fill up with the clearest of the rest
        rest = sorted((i for i in range(len(records)) if i not in keep), key=lambda i: -abs(float(p[i, 1]) - 0.5))
        keep += rest[:min(n, len(records)) - len(keep)]
    keep = sorted(keep)
    return [records[i] for i in keep], np.asarray(images)[keep], p[keep]


class Trainer:
    def __init__(self, settings: TrainerSettings, *, backbone: Backbone | None = None) -> None:
        self.settings = settings
        self.root = Path(settings.state_dir) / "trainer"
        self.index = TileIndex(self.root / "tiles.sqlite")
        # one registered model per enabled line; ``publisher`` is the first line's (Mapbox by default)
        self.publishers = {product: MlflowPublisher(settings, product) for product in settings.lines()}
        self.publisher = next(iter(self.publishers.values()))
        self._backbone = backbone
        self._store: EmbeddingStore | None = None
        self._statistics: EmbeddingStore | None = None
        self._lock = threading.Lock()

    # --- lazily built parts ------------------------------------------------------------------
    @property
    def backbone(self) -> Backbone:
        with self._lock:
            if self._backbone is None:
                self._backbone = load_backbone(self.settings)
            return self._backbone

    @property
    def store(self) -> EmbeddingStore:
        bb = self.backbone
        if self._store is None or self._store.backbone_id != bb.backbone_id:
            self._store = EmbeddingStore(Path(self.settings.state_dir) / "embeddings", bb.backbone_id,
                                         bb.embedding_dim)
        return self._store

    @property
    def statistics(self) -> EmbeddingStore:
        """The hand statistics per tile, in the same atomic shard store as the embeddings."""
        key = f"{STATISTICS_VERSION}-{self.backbone.image_size}px"
        if self._statistics is None or self._statistics.backbone_id != key:
            self._statistics = EmbeddingStore(Path(self.settings.state_dir) / "image_statistics", key,
                                              len(STATISTICS))
        return self._statistics

    def search_config(self) -> dict:
        s = self.settings
        return {"units": s.units_grid(), "learning_rates": s.learning_rate_grid(), "dropout": s.trainer_dropout,
                "epochs": s.trainer_epochs, "patience": s.trainer_patience, "batch_size": s.trainer_batch_size,
                "seed": s.trainer_seed, "fine_tune": s.trainer_fine_tune}

    def training_key(self, digest: str, product: str = MAPBOX) -> str:
        key: dict = {"dataset": digest, "search": self.search_config()}
        if product != MAPBOX:  # Mapbox keeps the keys of its trainings from before lines existed
            key["product"] = product
        if self.settings.trainer_not_visible_tiles != "keep":  # another policy trains another model
            key["not_visible_tiles"] = self.settings.trainer_not_visible_tiles
        text = json.dumps(key, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    # --- step 1: the embedding cache -----------------------------------------------------------
    def embed_missing(self, records: list[TileRecord]) -> tuple[int, int, list[tuple[str, str]]]:
        """Embed the records without a cached embedding. Returns (embedded, cache hits, unreadable)."""
        store, bb = self.store, self.backbone
        stats = self.statistics if self.settings.trainer_leakage_check else None
        missing_ids = set(store.missing([r.tile_id for r in records]))
        todo = [r for r in records if r.tile_id in missing_ids]
        hits = len(records) - len(todo)
        embedded, unreadable = 0, []
        chunk = max(self.settings.trainer_embed_batch_size * 8, 64)
        for start in range(0, len(todo), chunk):  # bounded memory, durable progress per chunk
            ok, images, bad = read_images(todo[start:start + chunk], bb.image_size, self.settings)
            unreadable += bad
            if ok:
                store.put([r.tile_id for r in ok], embed(bb, images, self.settings.trainer_embed_batch_size))
                if stats is not None:
                    stats.put([r.tile_id for r in ok], statistics_matrix(images))
                embedded += len(ok)
        if stats is not None:  # tiles embedded before their statistics were kept (older state)
            missing_stats = set(stats.missing([r.tile_id for r in records if r.tile_id in store]))
            late = [r for r in records if r.tile_id in missing_stats]
            for start in range(0, len(late), chunk):
                ok, images, _ = read_images(late[start:start + chunk], bb.image_size, self.settings)
                if ok:
                    stats.put([r.tile_id for r in ok], statistics_matrix(images))
        m.EMBEDDINGS_COMPUTED.inc(embedded)
        m.EMBEDDING_CACHE_HITS.inc(hits)
        m.UNREADABLE_TILES.inc(len(unreadable))
        return embedded, hits, unreadable

    # --- the whole training --------------------------------------------------------------------
    def train(self, reason: str, product: str = MAPBOX) -> TrainingOutcome:
        """One training of ``product``'s line, on that product's tiles only."""
        started = time.perf_counter()
        s = self.settings
        publisher = self.publishers.get(product)
        if publisher is None:
            raise ValueError(f"no model line for {product!r} (EMBERWATCH_MODEL_LINES={s.model_lines})")
        seq = self.index.max_seq()
        records = [r for r in self.index.all(product) if r.seq <= seq]
        t0 = time.perf_counter()
        embedded, hits, unreadable = self.embed_missing(records)
        t_embed = time.perf_counter() - t0
        store = self.store
        usable = leave_out_hidden([r for r in records if r.tile_id in store], s.trainer_not_visible_tiles)
        check = check_dataset(usable, min_train=s.trainer_min_train_per_class,
                              min_val=s.trainer_min_val_per_class, min_test=s.trainer_min_test_per_class)
        outcome = TrainingOutcome(status="skipped", reason=reason, product=product, check=check,
                                  embedded_new=embedded,
                                  embedding_cache_hits=hits, unreadable=len(unreadable),
                                  problems=list(check.problems), seq=seq, timings={"embed_s": t_embed})
        log.info("training data", extra={"product": product, "tiles": len(records), "usable": len(usable),
                                         "embedded_new": embedded,
                                         "cache_hits": hits, "unreadable": len(unreadable),
                                         "counts": check.counts, "balance": check.balance})
        if not check.ok:
            log.warning("training skipped: data fails the checks", extra={"problems": check.problems})
            m.TRAININGS.labels("skipped").inc()
            outcome.seconds = time.perf_counter() - started
            return outcome

        digest = dataset_digest(usable, store.backbone_id)
        key = self.training_key(digest, product)
        existing = publisher.find(key)
        if existing is not None:
            log.info("this training is already registered; reusing it", extra={"version": existing.version})
            m.TRAININGS.labels("reused").inc()
            outcome.status, outcome.candidate = "trained", existing
            outcome.dataset_digest = digest
            outcome.seconds = time.perf_counter() - started
            return outcome

        work = Path(tempfile.mkdtemp(prefix=f"train-{key[:8]}-", dir=self._work_dir()))
        try:
            t0 = time.perf_counter()
            bundle = self._train_head(usable, check, digest, key, reason, unreadable, embedded, hits, work)
            bundle.params["product"] = product
            t1 = time.perf_counter()
            outcome.candidate = publisher.publish(bundle)
            outcome.timings.update(train_s=t1 - t0, publish_s=time.perf_counter() - t1)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        outcome.status, outcome.bundle, outcome.dataset_digest = "trained", bundle, digest
        outcome.seconds = time.perf_counter() - started
        m.TRAININGS.labels("trained").inc()
        m.TRAINING_SECONDS.observe(outcome.seconds)
        m.LAST_VAL_ACCURACY.set(bundle.validation_metrics.get("val_accuracy", 0.0))
        return outcome

    def _work_dir(self) -> Path:
        d = self.root / "work"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def _train_head(self, usable, check, digest, key, reason, unreadable, embedded, hits, work) -> TrainingBundle:
        s = self.settings
        bb, store = self.backbone, self.store
        splits = by_split(usable)
        x = {name: store.get([r.tile_id for r in recs]) for name, recs in splits.items()}
        y = {name: labels_of(recs) for name, recs in splits.items()}
        result = search_head(
            x["train"], y["train"], x["val"], y["val"], units_grid=s.units_grid(),
            learning_rates=s.learning_rate_grid(), dropout=s.trainer_dropout, epochs=s.trainer_epochs,
            patience=s.trainer_patience, batch_size=s.trainer_batch_size, seed=s.trainer_seed,
            sample_weight=apply_policy([r.visible for r in splits["train"]], s.trainer_not_visible_tiles)[1],
        )
        head = result.model
        probs = {name: head.predict(x[name], verbose=0) if len(x[name]) else np.empty((0, 2))
                 for name in splits}
        known_pool = splits["test"] or splits["val"]
        # twice as many as needed: only tiles with a clear decision are kept (below)
        known = pick_known(known_pool, 2 * s.trainer_known_images)
        known_ok, known_images, _ = read_images(known, bb.image_size, self.settings)
        calibration = np.empty((0, bb.image_size, bb.image_size, 3), np.uint8)
        if s.trainer_calibration_tiles:  # training tiles only: the INT8 option calibrates on them
            _, calibration, _ = read_images(pick_known(splits["train"], s.trainer_calibration_tiles),
                                            bb.image_size, self.settings)

        # What is exported and registered: the head on the shared backbone, or a fine-tuned full model.
        export_head, export_backbone_id = head, bb.backbone_id
        registered, signature_example = head, x["val"][:2]
        full_model = None
        epoch_metrics = dict(result.history)
        extra_params: dict = {}
        summary: dict[str, float] = {}
        if s.trainer_fine_tune:
            tuned, probs, ft_summary = self._fine_tune(splits, head, probs, y)
            summary.update(ft_summary)
            export_head, export_backbone_id = tuned.head, tuned.backbone.backbone_id
            registered, signature_example = tuned.full_model, known_images[:1].astype(np.float32)
            full_model = tuned.full_model
            epoch_metrics.update({f"finetune_{k}": v for k, v in tuned.history.items()})
            extra_params = {"finetuned_backbone_id": tuned.backbone.backbone_id, "precision": tuned.precision,
                            "fine_tune_layers": s.trainer_fine_tune_layers,
                            "fine_tune_learning_rate": s.trainer_fine_tune_learning_rate}
            export_fine_tuned_backbone(tuned, work / "triton")
        full = full_model if full_model is not None else compose(bb.model, head)
        known_probs = (full.predict(known_images.astype(np.float32), verbose=0) if len(known_ok)
                       else np.empty((0, 2), np.float32))
        known_ok, known_images, known_probs = keep_clear_decisions(
            known_ok, known_images, known_probs, s.trainer_known_images, s.trainer_known_margin)

        for name in ("train", "val", "test"):
            summary.update(split_metrics(y[name], probs[name], name))
        leakage = self._check_leakage(splits, y, probs) if s.trainer_leakage_check else None
        if leakage is not None:
            summary.update(leakage.metrics())
        summary.update({f"balance_{split}": share for split, share in check.balance.items()})
        summary.update({"embedded_new": float(embedded), "embedding_cache_hits": float(hits),
                        "unreadable_tiles": float(len(unreadable)), "epochs_run": float(result.epochs_run)})
        validation = {k: v for k, v in summary.items() if k.startswith("val_")}

        matrices = {name: confusion(y[name], probs[name].argmax(axis=1))
                    for name in ("val", "test") if len(y[name])}
        plot_confusion(matrices, work / "plots" / "confusion_matrix.png")
        plot_training_curves(epoch_metrics, work / "plots" / "training_curves.png")
        relabels = self.index.relabel_counts()
        human = self.index.human_label_counts()
        dataset_info = {"dataset_digest": digest, "backbone_id": bb.backbone_id, "counts": check.counts,
                        "balance": check.balance, "unreadable": [{"tile_id": t, "error": e} for t, e in unreadable],
                        "embedded_new": embedded, "embedding_cache_hits": hits,
                        "confusion": {k: v.tolist() for k, v in matrices.items()},
                        "relabels": relabels, "human_labels": human,
                        "leakage": leakage.contract() | {"location_model": leakage.location_model,
                                                         "statistics_model": leakage.statistics_model}
                        if leakage is not None else None}
        trials = [{k: v for k, v in t.items() if k != "history"} for t in result.trials]
        write_artifacts(work, head_model=export_head, backbone_id=export_backbone_id, image_size=bb.image_size,
                        known=known_ok, known_images=known_images, known_probs=known_probs,
                        test_records=splits["test"], all_records=usable, dataset_info=dataset_info,
                        trials=trials, calibration_images=calibration)
        params = {
            "units": result.units, "learning_rate": result.learning_rate, "dropout": s.trainer_dropout,
            "max_epochs": s.trainer_epochs, "patience": s.trainer_patience, "batch_size": s.trainer_batch_size,
            "search_units": s.trainer_units, "search_learning_rates": s.trainer_learning_rates,
            "image_size": bb.image_size, "backbone_id": bb.backbone_id,
            "backbone_weights": bb.weights_source, "temperature": round(result.temperature, 4),
            "dataset_digest": digest, "training_key": key, "n_tiles": len(usable), "seed": s.trainer_seed,
            "fine_tune": s.trainer_fine_tune, "model_kind": "full" if full_model is not None else "head",
            "device": device_name(), **extra_params,
        }
        for split, counts in check.counts.items():
            for label, n in counts.items():
                params[f"n_{split}_{label}"] = n
        params.update(n_retired_tiles=relabels["retire"], n_relabelled_tiles=relabels["relabel"],
                      n_human_labels=human["human"], n_human_label_changes=human["human_changed"])
        if leakage is not None:
            params.update(leakage_split=leakage.split, leakage_n=leakage.n, leakage_margin=leakage.margin,
                          leakage_location_model=leakage.location_model,
                          leakage_statistics_model=leakage.statistics_model)
            if leakage.warning:
                m.LEAKAGE_WARNINGS.inc()
                log.warning("leakage check: a shortcut baseline comes close to the CNN",
                            extra={"warning": leakage.warning})
        trial_metrics = {}
        for t in result.trials:
            tag = f"search/u{t['units']}_lr{t['learning_rate']:g}"
            trial_metrics[f"{tag}/loss"] = t["history"]["loss"]
            trial_metrics[f"{tag}/val_loss"] = t["history"]["val_loss"]
        return TrainingBundle(
            training_key=key, dataset_digest=digest, backbone_id=bb.backbone_id, reason=reason, params=params,
            epoch_metrics=epoch_metrics, trial_metrics=trial_metrics,
            summary_metrics=summary, validation_metrics=validation, counts=check.counts,
            artifacts_dir=work, head_model=registered, signature_example=signature_example,
            leakage=leakage.contract() if leakage is not None else None,
        )

    def _check_leakage(self, splits, y, probs) -> LeakageResult | None:
        """The shortcut baselines on the CNN's own splits: scored on test (val if test lacks a class)."""
        name = "test" if len(set(y["test"].tolist())) == 2 else "val"
        if len(y[name]) == 0:
            return None

        def data(split: str) -> SplitData:
            recs = splits[split]
            loc = np.array([[r.lat, r.lon] if r.lat is not None and r.lon is not None else [np.nan, np.nan]
                            for r in recs], dtype=np.float64).reshape(-1, 2)
            return SplitData(loc, self.statistics.get([r.tile_id for r in recs]).astype(np.float64), y[split])

        parts = {split: data(split) for split in ("train", "val", name)}
        if any(np.isnan(p.location).any() for p in parts.values()):
            log.warning("leakage check: some tiles have no location (recorded by an older trainer); "
                        "the location baseline is skipped")
        result = check_leakage(parts["train"], parts["val"], parts[name], probs[name].argmax(axis=1), split=name,
                               margin=self.settings.trainer_leakage_margin, seed=self.settings.trainer_seed,
                               physics=[TileIndices(r.dnbr, r.hot_pixels) for r in splits[name]])
        log.info("leakage check", extra=result.metrics())
        return result

    def _fine_tune(self, splits, head, head_probs, y):
        """Fine-tune on the images of train/val; the full model's probabilities on every split."""
        s, bb = self.settings, self.backbone
        imgs = {}
        for name, recs in splits.items():
            ok, images, _ = read_images(recs, bb.image_size, self.settings)
            if len(ok) != len(recs):  # a tile vanished since it was embedded: keep splits aligned
                raise RuntimeError(f"{len(recs) - len(ok)} {name} tiles became unreadable during training")
            imgs[name] = images
        tuned = fine_tune(
            bb, head, imgs["train"], y["train"], imgs["val"], y["val"], layers=s.trainer_fine_tune_layers,
            epochs=s.trainer_fine_tune_epochs, learning_rate=s.trainer_fine_tune_learning_rate,
            batch_size=min(s.trainer_batch_size, 32), mixed_precision=use_mixed_precision(s.trainer_mixed_precision),
            seed=s.backbone_seed,
        )
        probs = {name: tuned.full_model.predict(im.astype(np.float32), verbose=0) if len(im) else np.empty((0, 2))
                 for name, im in imgs.items()}
        head_only = {}
        if len(y["val"]):
            head_only = {f"head_only_{k}": v for k, v in split_metrics(y["val"], head_probs["val"], "val").items()}
        return tuned, probs, head_only
