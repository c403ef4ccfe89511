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
    year, month = map(int, re.search(r"^ARG TRITON_IMAGE=nvcr\.io/nvidia/tritonserver:(\d+)\.(\d+)-py3$",
                                      dockerfile, re.MULTILINE).groups())
    assert (year, month) >= (24, 12), "releases before 24.12 run Python 3.10, which Pillow 13 does not support"
    assert "-c /tmp/constraints.txt" in dockerfile
    assert "pillow" in dockerfile and "pillow==" not in dockerfile.lower()  # the pin is constraints.txt's
    assert "PIP_BREAK_SYSTEM_PACKAGES=1" in dockerfile  # Ubuntu 24.04's Python is externally managed


def _resolve_for(python_version: str, requirements: list[str], tmp_path: Path) -> str:
    """What pip would install for CPython ``python_version`` on x86-64 Linux from binary wheels only,
    under constraints.txt (a dry run: nothing is installed; this machine's Python may be another)."""
    import subprocess
    import sys

    platforms = [arg for p in ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_27_x86_64",
                               "manylinux_2_28_x86_64") for arg in ("--platform", p)]
    out = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--disable-pip-version-check",
         "--python-version", python_version, "--implementation", "cp", *platforms, "--only-binary=:all:",
         "--target", str(tmp_path / f"py{python_version}"), "-c", str(REPO / "constraints.txt"), *requirements],
        capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return out.stdout


def test_the_triton_images_python_packages_resolve_for_its_python_3_12(tmp_path):
    """Dockerfile.triton's pip line, for the image's Python (3.12 on 26.06): every pinned version has a
    CPython 3.12 wheel (24.10's Python 3.10 had none for Pillow 13)."""
    dockerfile = (REPO / "Dockerfile.triton").read_text()
    assert "tritonserver:26.06-py3" in dockerfile
    line = re.search(r"pip install --no-cache-dir -c /tmp/constraints\.txt \\\n\s*(.+?)\s*\\\n", dockerfile).group(1)
    requirements = [req.strip('"') for req in line.split()]
    assert {"openvino", "pillow", '"numpy<2"'.strip('"')} <= set(requirements)
    resolved = _resolve_for("3.12", requirements, tmp_path)
    pinned = pins()
    for name in ("numpy", "pillow", "openvino"):
        assert f"{name}-{pinned[name]}" in resolved.lower(), resolved[-1500:]


def test_the_trainers_gpu_tensorflow_resolves_for_the_service_images_python(tmp_path):
    """compose's trainer image swaps tensorflow-cpu for TENSORFLOW: it resolves on python:3.11 with the
    same pins (numpy, protobuf, keras) and brings its CUDA libraries."""
    import yaml

    assert "ARG PYTHON_IMAGE=python:3.11-slim" in (REPO / "Dockerfile").read_text()
    spec = yaml.safe_load((REPO / "compose.yaml").read_text())["services"]["trainer"]["build"]["args"]["TENSORFLOW"]
    resolved = _resolve_for("3.11", [spec], tmp_path).lower()
    pinned = pins()
    assert "tensorflow-2.21.0" in resolved and "nvidia-cudnn-cu12" in resolved
    for name in ("numpy", "protobuf", "keras"):
        assert f"{name}-{pinned[name]}" in resolved, name
