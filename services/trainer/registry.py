"""Publish one training to MLflow: a run with everything logged, THEN a registered version.

Order matters: params, metrics, artifacts and the Keras model are logged first; only then is the
model version registered (tagged with the training key); only then is the run marked FINISHED. The
trainer sets no alias: ``champion`` and ``challenger`` are the gatekeeper's alone to move. Any
failure marks the run FAILED (best effort) and the whole publication is retried with backoff until
``trainer_mlflow_retry_s`` runs out. Before a retry registers anything it looks the training key up
among the model's versions, so a version whose registration succeeded but whose answer was lost is
finished, never duplicated.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from importlib import metadata
from typing import Any

from emberwatch.common import lease
from emberwatch.common.retries import Backoff, retrying
from emberwatch.contracts.products import MAPBOX, model_name_for
from services.trainer.metrics import MLFLOW_RETRIES
from services.trainer.models import RegisteredCandidate, TrainingBundle
from services.trainer.settings import TrainerSettings

log = logging.getLogger(__name__)

TAG_KEY = "training_key"
LEAKAGE_TAG = "leakage_warning"
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_PER_BATCH = 100


def is_transient(exc: BaseException) -> bool:
    """MLflow being down, slow or overloaded (retry) rather than a request it will always refuse."""
    import requests
    from mlflow.exceptions import MlflowException

    if isinstance(exc, MlflowException):
        status = exc.get_http_status_code()
        return status >= 500 or status in (408, 409, 429)
    if isinstance(exc, requests.exceptions.HTTPError) and exc.response is not None:
        return exc.response.status_code >= 500 or exc.response.status_code in (408, 429)
    return isinstance(exc, (requests.exceptions.RequestException, OSError, TimeoutError, PendingVersion))


def leakage_from_run(run) -> dict[str, Any] | None:
    """The leakage check of an already registered run (its metrics, params and tag), for a reused training."""
    m, p = run.data.metrics, run.data.params
    if "leakage_cnn_accuracy" not in m:
        return None
    return {"split": p.get("leakage_split", "test"), "n": int(float(p.get("leakage_n", 0))),
            "cnn_accuracy": m["leakage_cnn_accuracy"], "location_accuracy": m.get("leakage_location_accuracy"),
            "statistics_accuracy": m.get("leakage_statistics_accuracy"),
            "margin": m.get("leakage_margin", float(p.get("leakage_margin", 0.0))),
            "warning": run.data.tags.get(LEAKAGE_TAG),
            **{f"physics_rule_{k}": m.get(f"leakage_physics_rule_{k}") for k in ("accuracy", "recall", "specificity")},
            "physics_rule_tiles_with_indices": (int(m["leakage_physics_rule_tiles_with_indices"])
                                                if "leakage_physics_rule_tiles_with_indices" in m else None)}


class PendingVersion(RuntimeError):
    """A model version is still being created."""


def _pkg_version(*names: str) -> str | None:
    for name in names:
        try:
            return f"{name}=={metadata.version(name)}"
        except metadata.PackageNotFoundError:
            continue
    return None


class MlflowPublisher:
    def __init__(self, settings: TrainerSettings, product: str = MAPBOX) -> None:
        self.settings = settings
        self.uri = settings.mlflow_tracking_uri
        self.product = product
        self.model_name = model_name_for(settings.model_name, product)  # the line's registered model
        # Called with each step's name as publishing passes it ("run_created", "logged", "registered"):
        # progress for logs and a seam for fault-injection tests that stop the real MLflow mid-way.
        self.on_step: Callable[[str, str], None] | None = None
        # The MLflow client's own per-request retries are short; our retry loop wraps everything.
        os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = str(settings.trainer_mlflow_http_retries)
        os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] = "1"
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")

    # --- retry wrapper -----------------------------------------------------------------------
    def _retrying(self, what: str, fn: Callable[[], Any]) -> Any:
        backoff = Backoff(attempts=None, total_s=self.settings.trainer_mlflow_retry_s, first_s=0.5,
                          max_s=self.settings.trainer_mlflow_retry_max_wait_s)
        return retrying(backoff, what=f"MLflow {what}", logger=log, retry_on=is_transient,
                        counter=MLFLOW_RETRIES, extra={"tracking_uri": self.uri})(fn)

    def _client(self):
        from emberwatch.common.model_registry import mlflow_client

        return mlflow_client(self.uri)

    # --- lookups -----------------------------------------------------------------------------
    def _versions_with_key(self, client, key: str) -> list:
        from mlflow.exceptions import MlflowException

        try:
            return list(client.search_model_versions(
                f"name = '{self.model_name}' and tags.{TAG_KEY} = '{key}'"))
        except MlflowException as exc:
            if getattr(exc, "error_code", "") == "RESOURCE_DOES_NOT_EXIST":
                return []
            raise

    def find(self, key: str) -> RegisteredCandidate | None:
        """The registered candidate of this training key, finished if it was half-done; else None."""
        return self._retrying("lookup", lambda: self._find_once(self._client(), key))

    def _find_once(self, client, key: str) -> RegisteredCandidate | None:
        for mv in self._versions_with_key(client, key):
            if mv.status == "FAILED_REGISTRATION":
                log.warning("deleting a version whose registration failed", extra={"version": mv.version})
                client.delete_model_version(self.model_name, mv.version)
                continue
            if mv.status != "READY":
                raise PendingVersion(f"version {mv.version} is still {mv.status}")
            run = client.get_run(mv.run_id)
            if run.info.status == "RUNNING":
                client.set_terminated(mv.run_id, "FINISHED")
            metrics = {k: float(v) for k, v in run.data.metrics.items() if k.startswith("val_")}
            return RegisteredCandidate(self.model_name, str(mv.version), mv.run_id,
                                       f"runs:/{mv.run_id}/triton", metrics=metrics, reused=True,
                                       leakage=leakage_from_run(run))
        return None

    # --- publishing --------------------------------------------------------------------------
    def publish(self, bundle: TrainingBundle) -> RegisteredCandidate:
        return self._retrying("publish", lambda: self._publish_once(bundle))

    def _experiment_id(self, client) -> str:
        from mlflow.exceptions import MlflowException

        name = self.settings.trainer_mlflow_experiment
        exp = client.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        try:
            return client.create_experiment(name)
        except MlflowException:
            exp = client.get_experiment_by_name(name)
            if exp is None:
                raise
            return exp.experiment_id

    def _ensure_registered_model(self, client) -> None:
        from mlflow.exceptions import MlflowException

        try:
            client.get_registered_model(self.model_name)
        except MlflowException as exc:
            if getattr(exc, "error_code", "") != "RESOURCE_DOES_NOT_EXIST":
                raise
            try:
                client.create_registered_model(
                    self.model_name, description=f"Emberwatch wildfire classifier (ResNet50 head) on {self.product} "
                    "imagery.", tags={"product": self.product})
            except MlflowException as exc2:
                if getattr(exc2, "error_code", "") != "RESOURCE_ALREADY_EXISTS":
                    raise

    def _fail_stale_runs(self, client, experiment_id: str, key: str) -> None:
        """Runs of this training key left RUNNING by an attempt that died are marked FAILED."""
        stale = client.search_runs(
            [experiment_id], f"tags.{TAG_KEY} = '{key}' and attributes.status = 'RUNNING'")
        for run in stale:
            client.set_terminated(run.info.run_id, "FAILED")
            log.info("stale run marked FAILED", extra={"run_id": run.info.run_id})

    def _publish_once(self, bundle: TrainingBundle) -> RegisteredCandidate:
        from mlflow.entities import Metric, Param

        client = self._client()
        found = self._find_once(client, bundle.training_key)
        if found is not None:
            return found
        experiment_id = self._experiment_id(client)
        self._fail_stale_runs(client, experiment_id, bundle.training_key)
        tags = {
            TAG_KEY: bundle.training_key,
            "dataset_digest": bundle.dataset_digest,
            "backbone_id": bundle.backbone_id,
            "reason": bundle.reason[:500],
            "product": self.product,
            "mlflow.runName": f"train-{bundle.dataset_digest[:10]}",
        }
        if bundle.leakage and bundle.leakage.get("warning"):
            tags[LEAKAGE_TAG] = str(bundle.leakage["warning"])[:5000]
        run = client.create_run(experiment_id, tags=tags)
        run_id = run.info.run_id
        try:
            self._step("run_created", run_id)
            params = [Param(k, str(v)[:6000]) for k, v in sorted(bundle.params.items())]
            for i in range(0, len(params), MAX_PARAMS_PER_BATCH):
                client.log_batch(run_id, params=params[i:i + MAX_PARAMS_PER_BATCH])
            now = int(time.time() * 1000)
            metrics = [Metric(f"epoch_{k}", float(v), now, step) for k, values in bundle.epoch_metrics.items()
                       for step, v in enumerate(values)]
            metrics += [Metric(k, float(v), now, step) for k, values in bundle.trial_metrics.items()
                        for step, v in enumerate(values)]
            metrics += [Metric(k, float(v), now, 0) for k, v in bundle.summary_metrics.items()]
            for i in range(0, len(metrics), MAX_METRICS_PER_BATCH):
                client.log_batch(run_id, metrics=metrics[i:i + MAX_METRICS_PER_BATCH])
            self._log_dataset(client, run_id, bundle)
            client.log_artifacts(run_id, str(bundle.artifacts_dir))
            info = self._log_model(experiment_id, run_id, bundle.head_model, "model", bundle.signature_example)
            if bundle.full_model is not None:
                self._log_model(experiment_id, run_id, bundle.full_model, "full_model", None)
            self._step("logged", run_id)
            # Everything is logged: only now does the version exist — if this instance still holds
            # the trainer's lease (a standby that took over trains the same data itself).
            lease.ensure_held()
            self._ensure_registered_model(client)
            mv = client.create_model_version(
                self.model_name, source=info.model_uri, run_id=run_id,
                tags={TAG_KEY: bundle.training_key, "dataset_digest": bundle.dataset_digest,
                      "backbone_id": bundle.backbone_id, "product": self.product,
                      "model_kind": str(bundle.params.get("model_kind", "head"))},
                model_id=info.model_id,
                description=f"head trained on {sum(sum(c.values()) for c in bundle.counts.values())} tiles",
            )
            self._step("registered", run_id)
            client.set_terminated(run_id, "FINISHED")
        except BaseException:
            try:
                client.set_terminated(run_id, "FAILED")
            except Exception:  # noqa: BLE001 - MLflow may be the thing that is down
                log.warning("could not mark run FAILED (MLflow unreachable?)", extra={"run_id": run_id})
            raise
        log.info("candidate registered", extra={"model": self.model_name, "version": mv.version,
                                                "run_id": run_id})
        return RegisteredCandidate(self.model_name, str(mv.version), run_id, f"runs:/{run_id}/triton",
                                   metrics=dict(bundle.validation_metrics), leakage=bundle.leakage)

    def _step(self, name: str, run_id: str) -> None:
        log.info("MLflow publishing: %s", name, extra={"run_id": run_id})
        if self.on_step is not None:
            self.on_step(name, run_id)

    def _log_dataset(self, client, run_id: str, bundle: TrainingBundle) -> None:
        import json

        from mlflow.entities import Dataset, DatasetInput, InputTag

        total = sum(sum(c.values()) for c in bundle.counts.values())
        dataset = Dataset(
            name="tiles", digest=bundle.dataset_digest[:32], source_type="kafka",
            source=json.dumps({"topic": "tiles.ready.v1", "tiles": total,
                               "lineage": "lineage/tiles.json"}),
            schema=json.dumps({"backbone_id": bundle.backbone_id}),
            profile=json.dumps({"counts": bundle.counts}),
        )
        client.log_inputs(run_id, datasets=[DatasetInput(dataset, tags=[InputTag("mlflow.data.context", "training")])])

    def _log_model(self, experiment_id: str, run_id: str, model, name: str, example):
        import mlflow
        import mlflow.keras
        from mlflow.models import Model, infer_signature

        # Model.log creates the logged model in the ACTIVE experiment (the Default one, 0, when none
        # is set), not in its run's: the trainer's model would land in experiment 0, where MLflow's
        # basic auth (compose.yaml) gives the services' user READ only, and be refused (403). The
        # trainer's experiment is made the active one first (tests/deploy/test_compose_mlflow.py).
        mlflow.set_experiment(experiment_id=experiment_id)

        signature = None
        if example is not None:
            signature = infer_signature(example, model.predict(example, verbose=0))
        requirements = [r for r in (_pkg_version("keras"), _pkg_version("tensorflow-cpu", "tensorflow"),
                                    _pkg_version("numpy")) if r]
        return Model.log(
            artifact_path=None, name=name, flavor=mlflow.keras, model=model, run_id=run_id,
            signature=signature, pip_requirements=requirements,
        )
