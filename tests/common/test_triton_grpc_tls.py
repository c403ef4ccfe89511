"""Triton's gRPC over TLS, on a real tritonserver (the local stack's, CPU) started as the stack starts
it with EMBERWATCH_TRITON_GRPC_TLS_CERT/KEY: the flags compose.yaml gives the deployed one
(``grpc_tls_flags``), with a certificate made by README.md's recipe (deploy/compose/make-triton-tls).
A client that checks the certificate against it talks to it; a plaintext client and a client that
does not trust it are refused; ``predict_bytes`` reaches it over TLS. The recipe never replaces a key."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError
from tritonclient.utils import InferenceServerException

from emberwatch.common.config import Settings
from emberwatch.common.triton_client import grpc_client, grpc_tls_flags
from emberwatch.stack import manage
from tests.conftest import stack_settings

pytestmark = pytest.mark.timeout(120)
MAKE_TLS = Path(__file__).resolve().parents[2] / "deploy" / "compose" / "make-triton-tls"


def self_signed(folder: Path) -> tuple[Path, Path]:
    """The certificate and key README.md's recipe makes (deploy/compose/make-triton-tls)."""
    subprocess.run(["sh", str(MAKE_TLS), str(folder)], check=True, capture_output=True, timeout=60)
    return folder / "triton_tls_cert", folder / "triton_tls_key"


def test_the_flags_serve_grpc_over_tls_only():
    assert grpc_tls_flags(Path("/run/secrets/c"), Path("/run/secrets/k")) == [
        "--grpc-use-ssl=true", "--grpc-server-cert=/run/secrets/c", "--grpc-server-key=/run/secrets/k"]


def test_a_certificate_without_its_key_is_refused_at_start(tmp_path):
    with pytest.raises(ValidationError, match="go together"):
        Settings(triton_grpc_tls_cert=tmp_path / "cert.pem")
    assert Settings(triton_grpc_tls_ca="").triton_grpc_tls_ca is None  # empty means unset


def test_a_real_triton_serves_grpc_only_to_clients_that_trust_its_certificate(tmp_path):
    from emberwatch.operations.predict_image import predict_bytes

    cert, key = self_signed(tmp_path / "tls")
    ca = cert  # self-signed: the certificate is its own authority
    settings = stack_settings(tmp_path / "state", "triton", triton_grpc_tls_cert=cert, triton_grpc_tls_key=key)
    manage.up(settings)
    try:
        trusted = grpc_client(settings.triton_grpc_url, ca=ca)
        try:
            assert trusted.is_server_live()
            assert trusted.get_server_metadata().name == "triton"
        finally:
            trusted.close()
        for client in (grpc_client(settings.triton_grpc_url),             # plaintext
                       grpc_client(settings.triton_grpc_url, tls=True)):  # TLS, but the system's roots
            try:
                with pytest.raises(InferenceServerException, match="UNAVAILABLE"):
                    client.is_server_live()
            finally:
                client.close()
        # the CLI's path: over TLS the request reaches Triton (which has no model loaded here, and
        # says so); without TLS it never gets there
        with pytest.raises(InferenceServerException, match="unknown model: 'wildfire'"):
            predict_bytes(b"not an image", url=settings.triton_grpc_url, protocol="grpc", grpc_tls_ca=ca,
                          timeout_s=20)
        with pytest.raises(InferenceServerException, match="UNAVAILABLE"):
            predict_bytes(b"not an image", url=settings.triton_grpc_url, protocol="grpc", timeout_s=20)
    finally:
        manage.down(settings)


def test_the_recipe_never_replaces_an_existing_key(tmp_path):
    cert, key = self_signed(tmp_path)
    before = key.read_bytes()
    again = subprocess.run(["sh", str(MAKE_TLS), str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert again.returncode == 1 and "not replaced" in again.stderr
    assert key.read_bytes() == before and key.stat().st_mode & 0o077 == 0
