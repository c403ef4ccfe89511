"""A candidate's plots (training curves, confusion matrices) from its MLflow run's artifacts.

The trainer logs ``plots/training_curves.png`` and ``plots/confusion_matrix.png`` with every run; the
console fetches them from MLflow through the tracking server (so its artifact store's credentials
stay on the server side) and keeps them in memory: a run's artifacts never change.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

PLOTS = ("training_curves.png", "confusion_matrix.png")


class PlotMissing(LookupError):
    """The run has no such plot (e.g. it was trained before the trainer logged it)."""


class MlflowUnavailable(RuntimeError):
    """MLflow did not answer."""


class RunPlots:
    def __init__(self, tracking_uri: str, max_cached: int = 64) -> None:
        self.tracking_uri = tracking_uri
        self.max_cached = max_cached
        self._cache: dict[tuple[str, str], bytes] = {}

    def get(self, run_id: str, name: str) -> bytes:
        """The PNG bytes (blocking: call it from a thread)."""
        if name not in PLOTS:
            raise PlotMissing(f"no plot named {name!r}; the plots are {', '.join(PLOTS)}")
        key = (run_id, name)
        if key not in self._cache:
            data = self._download(run_id, f"plots/{name}")
            if len(self._cache) >= self.max_cached:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = data
        return self._cache[key]

    def _download(self, run_id: str, path: str) -> bytes:
        # Imported here: mlflow costs seconds to import, and only this page needs it.
        from mlflow.artifacts import download_artifacts
        from mlflow.exceptions import MlflowException

        with tempfile.TemporaryDirectory(prefix="console-plot-") as tmp:
            try:
                local = download_artifacts(run_id=run_id, artifact_path=path, dst_path=tmp,
                                           tracking_uri=self.tracking_uri)
            except MlflowException as exc:
                if "RESOURCE_DOES_NOT_EXIST" in str(getattr(exc, "error_code", "")) or \
                        "does not exist" in str(exc).lower() or "not found" in str(exc).lower():
                    raise PlotMissing(f"run {run_id} has no {path} in MLflow") from exc
                raise MlflowUnavailable(f"MLflow refused the download of {path}: {type(exc).__name__}") from exc
            except Exception as exc:  # noqa: BLE001 - requests/urllib3 errors: MLflow down or restarting
                raise MlflowUnavailable(f"MLflow is not reachable ({type(exc).__name__})") from exc
            file = Path(local)
            if not file.is_file():
                raise PlotMissing(f"run {run_id} has no {path} in MLflow")
            return file.read_bytes()
