"""A mistyped EMBERWATCH_* variable (environment or .env) is an error naming the closest known one; a
variable any service reads is known; no value is ever shown."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from emberwatch.common.config import Settings
from emberwatch.common.config_doc import settings_classes
from emberwatch.common.unknown_settings import (
    READ_ELSEWHERE,
    UnknownSetting,
    check_variables,
    closest,
    given_variables,
    unknown_variables,
    variables_of,
)

REPO = Path(__file__).resolve().parents[2]
EVERY_SERVICE = variables_of(cls for _, cls in settings_classes())


def test_a_typo_names_the_closest_known_variable_and_hides_the_value():
    env = {"EMBERWATCH_KAFKA_BOOTSRAP_SERVERS": "s3cr3t-value", "PATH": "/bin"}
    with pytest.raises(UnknownSetting) as info:
        check_variables(EVERY_SERVICE, environ=env, dotenv=None)
    text = str(info.value)
    assert "EMBERWATCH_KAFKA_BOOTSRAP_SERVERS (set in the environment) is not a setting; " \
           "did you mean EMBERWATCH_KAFKA_BOOTSTRAP_SERVERS?" in text
    assert "s3cr3t-value" not in text


def test_every_unknown_variable_is_listed_and_nothing_similar_is_said_so():
    given = {"EMBERWATCH_TRAINER_EPOHCS": "environment", "EMBERWATCH_ZZZZZZZZZZZZ": "environment"}
    lines = unknown_variables(given, EVERY_SERVICE)
    assert lines == [
        "EMBERWATCH_TRAINER_EPOHCS (set in the environment) is not a setting; did you mean EMBERWATCH_TRAINER_EPOCHS?",
        "EMBERWATCH_ZZZZZZZZZZZZ (set in the environment) is not a setting; no setting has a similar name",
    ]


def test_dotenv_counts_too_and_case_does_not_matter(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("EMBERWATCH_LOG_LEVLE=DEBUG\nOTHER=1\n")
    with pytest.raises(UnknownSetting, match=r"EMBERWATCH_LOG_LEVLE \(set in the .*\.env\) .*EMBERWATCH_LOG_LEVEL"):
        check_variables(EVERY_SERVICE, environ={}, dotenv=dotenv)
    dotenv.write_text("emberwatch_log_level=DEBUG\n")
    check_variables(EVERY_SERVICE, environ={"Emberwatch_Kafka_Port": "9093"}, dotenv=dotenv)
    assert given_variables({"emberwatch_x": "1", "HOME": "/"}, None) == {"EMBERWATCH_X": "environment"}


def test_a_variable_another_service_reads_is_known():
    common = variables_of([Settings])
    assert "EMBERWATCH_TRAINER_EPOCHS" not in common and "EMBERWATCH_TRAINER_EPOCHS" in EVERY_SERVICE
    for name in ("EMBERWATCH_TRAINER_EPOCHS", "EMBERWATCH_NOTIFIER_USERNAME", "EMBERWATCH_CONSOLE_PORT",
                 "EMBERWATCH_INGESTOR_POLL_INTERVAL_S", "EMBERWATCH_KAFKA_BOOTSTRAP_SERVERS",
                 "EMBERWATCH_SIM_LOG_LEVEL"):
        check_variables(EVERY_SERVICE, environ={name: "1"}, dotenv=None)
    with pytest.raises(UnknownSetting):
        check_variables(common, environ={"EMBERWATCH_TRAINER_EPOCHS": "1"}, dotenv=None)
    assert closest("EMBERWATCH_TRITON_ULR", EVERY_SERVICE) == "EMBERWATCH_TRITON_URL"


# Where the repository names variables a process is handed: code, scripts, compose, manifests, images.
NAMED_IN = ("emberwatch", "services", "simulators", "triton_models", "scripts", "deploy", "tests", "benchmarks",
            "monitoring", "compose.yaml", "compose.cpu.yaml", "compose.sim.yaml", "compose.offline.yaml",
            "Dockerfile", "Dockerfile.triton", ".ci")
# The tests of the check, whose mistyped names are on purpose.
TYPOS_ON_PURPOSE = ("tests/common/test_unknown_settings.py", "tests/cli/test_unknown_settings_at_start.py")
# A whole name: not a prefix that code completes (EMBERWATCH_MAPBOX_SIM_{...}).
VARIABLE = re.compile(r"EMBERWATCH_[A-Z0-9_]*[A-Z0-9](?![A-Za-z0-9_{])")


def test_every_variable_the_repository_names_is_known():
    """A variable the code, the stack, compose or Kubernetes sets or reads must not stop a process at start."""
    named: dict[str, str] = {}
    for top in NAMED_IN:
        root = REPO / top
        files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()] if root.is_dir() else []
        for path in files:
            if (path.suffix in (".pyc", ".png", ".onnx", ".tif", ".gz", ".sqlite3") or "__pycache__" in path.parts
                    or str(path.relative_to(REPO)) in TYPOS_ON_PURPOSE):
                continue
            try:
                text = path.read_text()
            except (UnicodeDecodeError, OSError):
                continue
            for name in VARIABLE.findall(text):
                named.setdefault(name, str(path.relative_to(REPO)))
    assert len(named) > 100
    missing = {name: where for name, where in named.items() if name not in EVERY_SERVICE | READ_ELSEWHERE}
    assert missing == {}, "\n".join(f"{n} (in {w}): a setting, or READ_ELSEWHERE" for n, w in sorted(missing.items()))
