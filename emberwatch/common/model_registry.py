"""The MLflow model registry as every part uses it: one way to get a client, one spelling of the
aliases. Only the gatekeeper moves the aliases; the others read them."""

from __future__ import annotations

from typing import Any

CHAMPION = "champion"  # the version Triton serves to users
CHALLENGER = "challenger"  # the version in shadow beside it


def mlflow_client(tracking_uri: str) -> Any:
    """An ``MlflowClient`` whose tracking and registry server are both ``tracking_uri``."""
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(tracking_uri)
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
