"""The Triton inference server: its endpoints, TLS, admin key and the model repository it serves."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr

from emberwatch.common.repo import REPO_ROOT


class TritonSettings(BaseModel):
    triton_url: str = Field(
        "127.0.0.1:8000",
        description="Triton HTTP endpoint host:port (default: the local stack's, from EMBERWATCH_TRITON_HTTP_PORT).")
    triton_grpc_url: str = Field(
        "127.0.0.1:8001",
        description="Triton gRPC endpoint host:port (default: the local stack's, from EMBERWATCH_TRITON_GRPC_PORT).")
    triton_grpc_tls: bool = Field(
        False, description="Talk to Triton's gRPC endpoint over TLS (compose.yaml's Triton serves gRPC only over "
                           "TLS), verified against EMBERWATCH_TRITON_GRPC_TLS_CA or else the system's roots.")
    triton_grpc_tls_ca: Path | None = Field(
        None, description="PEM file of the certificate authority that signed Triton's gRPC certificate; "
                          "setting it turns on EMBERWATCH_TRITON_GRPC_TLS.")
    triton_admin_key: SecretStr | None = Field(
        None, description="Key of Triton's model-repository API (secret): sent by the gatekeeper as the "
                          "emberwatch-admin-key header on load, unload and index, which a deployed Triton "
                          "restricts to it; unset or empty: no header (the local stack's Triton needs none).")
    triton_model_repository: Path = Field(
        REPO_ROOT / ".state" / "triton_models",
        description="The model repository Triton serves (explicit model control), written by the "
        "gatekeeper alone from the templates in triton_models/ (default: <EMBERWATCH_STATE_DIR>/triton_models).",
    )
