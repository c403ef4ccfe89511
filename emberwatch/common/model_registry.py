"""The MLflow model registry as every part uses it: one way to get a client, one spelling of the
aliases. Only the gatekeeper moves the aliases; the others read them."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from emberwatch.common.config import Settings

CHAMPION = "champion"  # the version Triton serves to users
CHALLENGER = "challenger"  # the version in shadow beside it


def use_mlflow_credentials(settings: Settings) -> None:
    """Sign this process's MLflow client in as ``settings.mlflow_tracking_username``. The client reads
    its basic-auth credentials only from MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD (or
    ~/.mlflow/credentials), so they are set here, in this process's environment alone: the password
    comes from the settings (a secrets file, EMBERWATCH_MLFLOW_TRACKING_PASSWORD), never from the
    container's environment. Unset or empty values change nothing."""
    username, password = settings.mlflow_tracking_username, settings.mlflow_tracking_password
    if username:
        os.environ["MLFLOW_TRACKING_USERNAME"] = username
    if password is not None and password.get_secret_value():
        os.environ["MLFLOW_TRACKING_PASSWORD"] = password.get_secret_value()


def mlflow_client(tracking_uri: str) -> Any:
    """An ``MlflowClient`` whose tracking and registry server are both ``tracking_uri``."""
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(tracking_uri)
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
