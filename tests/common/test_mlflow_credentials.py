"""The services' MLflow sign-in: the user and the password from the settings (the password a secrets
file) go to the MLflow client through this process's environment only, and unset ones change nothing.
Against a real MLflow with basic auth: tests/deploy/test_compose_mlflow.py."""

from __future__ import annotations

import os

from pydantic import SecretStr

from emberwatch.common.config import Settings
from emberwatch.common.model_registry import use_mlflow_credentials

VARS = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")


def _clear(monkeypatch) -> None:
    for var in VARS:
        monkeypatch.setenv(var, "")
        monkeypatch.delenv(var)


def test_the_settings_password_file_signs_the_client_in(tmp_path, monkeypatch):
    _clear(monkeypatch)
    (tmp_path / "EMBERWATCH_MLFLOW_TRACKING_PASSWORD").write_text("s3cret-of-the-service\n")
    monkeypatch.setenv("EMBERWATCH_SECRETS_DIR", str(tmp_path))
    monkeypatch.setenv("EMBERWATCH_MLFLOW_TRACKING_USERNAME", "emberwatch")
    settings = Settings()
    assert "s3cret" not in repr(settings) and "s3cret" not in str(settings.model_dump())
    use_mlflow_credentials(settings)
    assert (os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"]) == \
        ("emberwatch", "s3cret-of-the-service")


def test_unset_or_empty_values_leave_the_clients_own_variables(monkeypatch):
    _clear(monkeypatch)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "someone")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "theirs")
    use_mlflow_credentials(Settings(mlflow_tracking_username=None, mlflow_tracking_password=None))
    use_mlflow_credentials(Settings(mlflow_tracking_username="", mlflow_tracking_password=SecretStr("")))
    assert (os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"]) == ("someone", "theirs")
