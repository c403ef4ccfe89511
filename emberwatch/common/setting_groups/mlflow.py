"""The MLflow tracking server and model registry, and how to sign in to it."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr


class MlflowSettings(BaseModel):
    mlflow_tracking_uri: str = Field(
        "http://127.0.0.1:5000",
        description="MLflow tracking server (default: the local stack's, from EMBERWATCH_MLFLOW_PORT).")
    mlflow_tracking_username: str | None = Field(
        None, description="MLflow basic-auth user to sign in as (unset: MLflow's own MLFLOW_TRACKING_USERNAME, if any; "
                          "the local stack's MLflow needs none).")
    mlflow_tracking_password: SecretStr | None = Field(
        None, description="Password of EMBERWATCH_MLFLOW_TRACKING_USERNAME (secret; compose mounts it as a file "
                          "under EMBERWATCH_SECRETS_DIR), handed to the MLflow client inside the process.")
