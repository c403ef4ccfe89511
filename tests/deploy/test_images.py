"""The Dockerfiles (never built here: no Docker engine): what the deployed images must carry."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def pins() -> dict[str, str]:
    out = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        name, sep, version = line.partition("==")
        if sep and not line.startswith("#"):
            out[name.strip().lower().replace("_", "-")] = version.strip()
    return out


def test_the_service_image_installs_the_deploy_extra_pinned():
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(r'pip install [^\n]*-c constraints\.txt "\.\[deploy\]"', dockerfile)
    extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["deploy"]
    names = {re.split(r"[\[=<>~]", req)[0].lower() for req in extra}
    assert {"psycopg2-binary", "mlflow"} <= names  # MLflow's PostgreSQL driver; mlflow[auth]: Flask-WTF
    assert any(req.startswith("mlflow[auth]") for req in extra)
    pinned = pins()
    for name in ("psycopg2-binary", "flask-wtf", "wtforms", "mlflow"):
        assert name in pinned, f"{name} is not pinned in constraints.txt"


def test_the_service_image_ships_the_triton_templates_where_the_gatekeeper_looks():
    """install_templates reads <REPO_ROOT>/triton_models; REPO_ROOT of an installed package is its
    site-packages directory, so the image links the copied templates there and checks every one."""
    from services.gatekeeper.serving.repository import TEMPLATE_FILES

    dockerfile = (REPO / "Dockerfile").read_text()
    copy = re.search(r"^COPY triton_models (\S+)$", dockerfile, re.MULTILINE)
    assert copy, "the image does not copy triton_models/"
    assert "from emberwatch.common.config import REPO_ROOT" in dockerfile
    assert "TEMPLATE_FILES" in dockerfile and "assert not missing" in dockerfile  # checked at build time
    for rel in TEMPLATE_FILES:
        assert (REPO / "triton_models" / rel).is_file(), rel
    assert dockerfile.index("COPY triton_models") > dockerfile.index('".[deploy]"')  # after the install


def test_the_triton_image_is_a_python_312_release_with_the_pinned_packages():
    dockerfile = (REPO / "Dockerfile.triton").read_text()
    year, month = map(int, re.search(r"^FROM nvcr\.io/nvidia/tritonserver:(\d+)\.(\d+)-py3$",
                                      dockerfile, re.MULTILINE).groups())
    assert (year, month) >= (24, 12), "releases before 24.12 run Python 3.10, which Pillow 13 does not support"
    assert "-c /tmp/constraints.txt" in dockerfile
    assert "pillow" in dockerfile and "pillow==" not in dockerfile.lower()  # the pin is constraints.txt's
    assert "PIP_BREAK_SYSTEM_PACKAGES=1" in dockerfile  # Ubuntu 24.04's Python is externally managed
