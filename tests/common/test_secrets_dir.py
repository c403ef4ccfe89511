"""Secrets from files (EMBERWATCH_SECRETS_DIR, as compose mounts them under /run/secrets): read into the
settings of every service, after the environment, and never shown by ``emberwatch config`` or logs."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest

from emberwatch.common import config
from emberwatch.common.config import Settings
from emberwatch.common.logging import configure_logging

# Random-looking values the redactor's patterns do not know: only SecretStr keeps them out of logs.
SECRETS = {
    "EMBERWATCH_MAPBOX_TOKEN": "mbx-3f9a1c77e2b04d6f",
    "EMBERWATCH_DISCORD_WEBHOOK_URL": "https://discord.example/hook/5e1d0b9c44a2",
    "EMBERWATCH_CONSOLE_OPERATOR_TOKEN": "op-7c2e91d04b5a",
    "EMBERWATCH_TRITON_ADMIN_KEY": "tk-a81f3e2c9d70",
}


@pytest.fixture
def secrets(tmp_path, monkeypatch):
    for name in SECRETS:
        monkeypatch.delenv(name, raising=False)
    folder = tmp_path / "secrets"
    folder.mkdir()
    for name, value in SECRETS.items():
        (folder / name).write_text(value + "\n")  # as `openssl rand -hex` or an editor leaves them
    monkeypatch.setenv("EMBERWATCH_SECRETS_DIR", str(folder))
    return folder


def test_secret_files_are_read_into_the_settings(secrets):
    s = Settings()
    assert s.secrets_dir == secrets
    assert s.mapbox_token.get_secret_value() == SECRETS["EMBERWATCH_MAPBOX_TOKEN"]  # newline stripped
    assert s.discord_webhook_url.get_secret_value() == SECRETS["EMBERWATCH_DISCORD_WEBHOOK_URL"]
    assert s.triton_admin_key.get_secret_value() == SECRETS["EMBERWATCH_TRITON_ADMIN_KEY"]
    # A service's own settings class reads its own secrets from the same directory.
    from services.console.settings import ConsoleSettings

    console = ConsoleSettings()
    assert console.console_operator_token.get_secret_value() == SECRETS["EMBERWATCH_CONSOLE_OPERATOR_TOKEN"]
    assert console.mapbox_token.get_secret_value() == SECRETS["EMBERWATCH_MAPBOX_TOKEN"]


def test_a_file_name_in_lower_case_is_read_and_the_environment_comes_first(secrets, monkeypatch):
    (secrets / "EMBERWATCH_MAPBOX_TOKEN").rename(secrets / "emberwatch_mapbox_token")
    assert Settings().mapbox_token.get_secret_value() == SECRETS["EMBERWATCH_MAPBOX_TOKEN"]
    monkeypatch.setenv("EMBERWATCH_MAPBOX_TOKEN", "from-the-environment")
    assert Settings().mapbox_token.get_secret_value() == "from-the-environment"


def test_the_directory_is_optional_but_a_missing_one_named_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv("EMBERWATCH_MAPBOX_TOKEN", raising=False)
    monkeypatch.setenv("EMBERWATCH_SECRETS_DIR", "")
    assert Settings().secrets_dir is None and Settings().mapbox_token is None
    monkeypatch.setenv("EMBERWATCH_SECRETS_DIR", str(tmp_path / "nope"))
    with pytest.raises(ValueError, match="EMBERWATCH_SECRETS_DIR=.* is not a directory"):
        Settings()
    # Unset: /run/secrets where it exists (compose), else nothing.
    monkeypatch.delenv("EMBERWATCH_SECRETS_DIR")
    fake = tmp_path / "run-secrets"
    monkeypatch.setattr(config, "DEFAULT_SECRETS_DIR", fake)
    assert Settings().secrets_dir is None
    fake.mkdir()
    (fake / "EMBERWATCH_MAPBOX_TOKEN").write_text("pk-from-run-secrets")
    assert Settings().secrets_dir == fake
    assert Settings().mapbox_token.get_secret_value() == "pk-from-run-secrets"


def test_secrets_from_files_never_reach_logs_or_emberwatch_config(secrets, capsys):
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging("DEBUG", "json")
    try:
        s = Settings()
        log = logging.getLogger("emberwatch.test")
        log.info("settings %s", s, extra={"settings": s.model_dump(), "repr": repr(s)})
        log.warning("starting", extra={"token": s.mapbox_token, "webhook": s.discord_webhook_url})
    finally:
        root.handlers[:], root.level = handlers, level
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and all(json.loads(line) for line in lines)
    assert "**********" in lines[0]  # the settings were logged, masked
    out = subprocess.run([sys.executable, "-m", "emberwatch.cli.main", "config"], capture_output=True,
                         text=True, timeout=120, env={**os.environ, "COLUMNS": "300"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert "EMBERWATCH_SECRETS_DIR" in out.stdout and "EMBERWATCH_TRITON_ADMIN_KEY" in out.stdout
    for value in SECRETS.values():
        for text in (*lines, out.stdout, out.stderr):
            assert value not in text
