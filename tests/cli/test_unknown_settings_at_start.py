"""The command line refuses to start with a mistyped EMBERWATCH_* variable, naming the closest known one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _emberwatch(*args: str, extra_env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("EMBERWATCH_")}
    env.update({"PYTHONPATH": str(REPO), **extra_env})
    return subprocess.run([sys.executable, "-m", "emberwatch", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def test_a_mistyped_variable_stops_any_command_and_a_known_one_does_not(tmp_path):
    bad = _emberwatch("config", extra_env={"EMBERWATCH_KAFKA_BOOTSRAP_SERVERS": "x:1"}, cwd=tmp_path)
    assert bad.returncode != 0
    assert "did you mean EMBERWATCH_KAFKA_BOOTSTRAP_SERVERS?" in bad.stderr
    (tmp_path / ".env").write_text("EMBERWATCH_STATE_DIRR=/tmp/x\n")
    from_dotenv = _emberwatch("config", extra_env={}, cwd=tmp_path)
    assert from_dotenv.returncode != 0 and "did you mean EMBERWATCH_STATE_DIR?" in from_dotenv.stderr
    (tmp_path / ".env").unlink()
    good = _emberwatch("config", extra_env={"EMBERWATCH_TRAINER_EPOCHS": "2", "EMBERWATCH_KAFKA_PORT": "9093"},
                       cwd=tmp_path)
    assert good.returncode == 0, good.stderr[-2000:]
