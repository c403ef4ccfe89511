"""MLflow: the candidate's artifacts, the champion/challenger aliases, the evidence of each decision.

A candidate's artifacts come from MLflow's own record of its version (``get_model_version``: its run),
never from a URI in an event: ``verified_run`` checks the event's ``run_id`` and ``artifact_uri``
against that record (``runs:/<run_id>/triton``, as the trainer announces it) and refuses a mismatch
with ``UntrustedCandidate``; ``download_candidate`` then takes the run's ``triton`` folder by run id."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException

from emberwatch.common import lease
from emberwatch.common.model_registry import mlflow_client


@dataclass(frozen=True)
class CandidateFiles:
    triton_dir: Path          # head.npz, head.json
    known_images: Path        # validation/known_images.npz
    test_split: Path | None   # test_split.json (None if the run has none)
    lineage: Path | None = None  # lineage/tiles.json: every tile the run used, with its split


class UntrustedCandidate(ValueError):
    """A candidate event that MLflow's record of its version does not bear out: nothing is downloaded."""


ARTIFACT_PATH = "triton"  # the folder of a run that holds the head Triton serves


class Registry:
    def __init__(self, tracking_uri: str, model_name: str):
        self.tracking_uri = tracking_uri
        self.model_name = model_name
        self.client = mlflow_client(tracking_uri)

    # --- artifacts ---------------------------------------------------------------------------
    def verified_run(self, version: str, run_id: str, artifact_uri: str) -> str:
        """MLflow's run of ``version``, once the event's ``run_id`` and ``artifact_uri`` are found to be
        MLflow's record of it; ``UntrustedCandidate`` otherwise (MLflow unreachable: its own error)."""
        try:
            mv = self.client.get_model_version(self.model_name, str(version))
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                raise UntrustedCandidate(f"{self.model_name} has no registered version {version!s:.20}") from None
            raise
        if not mv.run_id or run_id != mv.run_id:
            raise UntrustedCandidate(f"the event's run_id {run_id[:64]!r} is not MLflow's record of version "
                                     f"{version} (its run is {mv.run_id})")
        expected = f"runs:/{mv.run_id}/{ARTIFACT_PATH}"
        if artifact_uri != expected:
            raise UntrustedCandidate(f"the event's artifact_uri {artifact_uri[:200]!r} is not {expected}, "
                                     f"MLflow's record of version {version}")
        return str(mv.run_id)

    def download_candidate(self, run_id: str, dst: Path) -> CandidateFiles:
        """The artifacts of MLflow's run ``run_id`` (from ``verified_run`` or MLflow's own record)."""
        dst.mkdir(parents=True, exist_ok=True)
        triton = Path(mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=ARTIFACT_PATH, dst_path=str(dst / "triton-dl"),
            tracking_uri=self.tracking_uri))
        known = Path(mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path="validation/known_images.npz", dst_path=str(dst),
            tracking_uri=self.tracking_uri))
        test_split = self._optional_artifact(run_id, "test_split.json", dst)
        lineage = self._optional_artifact(run_id, "lineage/tiles.json", dst)
        return CandidateFiles(triton_dir=triton, known_images=known, test_split=test_split, lineage=lineage)

    def _optional_artifact(self, run_id: str, path: str, dst: Path) -> Path | None:
        """A run's artifact at ``path``, or None when the run has none."""
        try:
            return Path(mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=path, dst_path=str(dst), tracking_uri=self.tracking_uri))
        except (MlflowException, OSError):
            return None

    def download_lineage(self, version: str) -> list[dict]:
        """A registered version's ``lineage/tiles.json`` rows ([] when its run has none). MLflow being
        unreachable is an error, never an empty lineage (that would let training tiles into a shadow)."""
        run_id = self.client.get_model_version(self.model_name, str(version)).run_id
        listed = {a.path for a in self.client.list_artifacts(run_id, "lineage")}
        if "lineage/tiles.json" not in listed:
            return []
        with tempfile.TemporaryDirectory() as tmp:
            path = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path="lineage/tiles.json", dst_path=tmp, tracking_uri=self.tracking_uri)
            return json.loads(Path(path).read_text())

    def download_version_head(self, version: str, dst: Path) -> Path:
        """The ``triton/`` folder of a registered version's run (for a rollback to an unloaded one)."""
        mv = self.client.get_model_version(self.model_name, str(version))
        return Path(mlflow.artifacts.download_artifacts(
            run_id=mv.run_id, artifact_path=ARTIFACT_PATH, dst_path=str(dst), tracking_uri=self.tracking_uri))

    def run_id_of(self, version: str) -> str | None:
        try:
            return self.client.get_model_version(self.model_name, str(version)).run_id
        except MlflowException:
            return None

    # --- aliases -----------------------------------------------------------------------------
    def alias(self, alias: str) -> str | None:
        try:
            return str(self.client.get_model_version_by_alias(self.model_name, alias).version)
        except MlflowException:
            return None

    def set_alias(self, alias: str, version: str) -> None:
        lease.ensure_held()  # only the active gatekeeper moves an alias
        self.client.set_registered_model_alias(self.model_name, alias, str(version))

    def clear_alias(self, alias: str, only_if: str | None = None) -> None:
        if only_if is not None and self.alias(alias) != str(only_if):
            return
        lease.ensure_held()
        try:
            self.client.delete_registered_model_alias(self.model_name, alias)
        except MlflowException:
            pass

    def tag_version(self, version: str, key: str, value: str) -> None:
        self.client.set_model_version_tag(self.model_name, str(version), key, value)

    # --- evidence ----------------------------------------------------------------------------
    def log_evidence(self, run_id: str, evidence: dict[str, Any], metrics: dict[str, float],
                     params: dict[str, Any], name: str = "gatekeeper/evidence.json") -> None:
        """Metrics, params and the full evidence as a JSON artifact on the candidate's run."""
        import time

        from mlflow.entities import Metric, Param

        now = int(time.time() * 1000)
        existing = self.client.get_run(run_id).data.params
        new_params = [Param(k, str(v)) for k, v in params.items() if k not in existing]
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items() if v is not None],
            params=new_params,
        )
        self.client.log_text(run_id, json.dumps(evidence, indent=2, sort_keys=True, default=str), name)
