"""The local stack (``emberwatch stack up``, the demo): where its parts bind and which it starts."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, model_validator


class LocalStackSettings(BaseModel):
    stack_host: str = Field("127.0.0.1", description="Address the local stack binds to.")
    kafka_port: int = Field(9092, description="Local broker (Tansu) port.")
    mlflow_port: int = Field(5000, description="Local MLflow server port.")
    triton_http_port: int = Field(8000, description="Local Triton HTTP port.")
    triton_grpc_port: int = Field(8001, description="Local Triton gRPC port.")
    triton_metrics_port: int = Field(8002, description="Local Triton metrics port.")
    triton_grpc_tls_cert: Path | None = Field(
        None, description="Serve the local Triton's gRPC over TLS with this certificate (PEM; with "
                          "EMBERWATCH_TRITON_GRPC_TLS_KEY); unset: plain gRPC on the stack's address.")
    triton_grpc_tls_key: Path | None = Field(
        None, description="Private key (PEM) of EMBERWATCH_TRITON_GRPC_TLS_CERT.")
    prometheus_port: int = Field(9090, description="Local Prometheus port.")
    cwfis_sim_port: int = Field(8081, description="Port of the local CWFIS simulator (stack part sim-cwfis).")
    mapbox_sim_port: int = Field(8082, description="Port of the local Mapbox simulator (stack part sim-mapbox).")
    discord_sim_port: int = Field(8083, description="Port of the local Discord simulator (stack part sim-discord).")
    stac_sim_port: int = Field(8084, description="Port of the local STAC/COG simulator of Sentinel-2 (stack part "
                               "sim-stac).")
    console_host: str = Field("127.0.0.1", description="Address the operator console binds.")
    console_port: int = Field(8090, ge=0, le=65535, description="Port of the operator console (0: any free port; "
                              "stack part console).")
    services_metrics_base_port: int = Field(
        9101, description="Default /metrics ports of the services, from here in the order ingestor, "
        "tiler, trainer, gatekeeper, notifier (9101-9105), so services started by hand coexist.",
    )
    stack_parts: str = Field(
        "kafka,mlflow,triton,prometheus",
        description="Parts `emberwatch stack up` starts, comma-separated: kafka, mlflow, triton, "
        "prometheus, sim-cwfis, sim-mapbox, sim-discord, sim-stac, ingestor, tiler, trainer, gatekeeper, notifier, console.",
    )

    @model_validator(mode="after")
    def _tls_certificate_with_its_key(self) -> LocalStackSettings:
        """The local Triton's gRPC TLS needs both files: refuse one without the other at start."""
        if (self.triton_grpc_tls_cert is None) != (self.triton_grpc_tls_key is None):
            raise ValueError("EMBERWATCH_TRITON_GRPC_TLS_CERT and EMBERWATCH_TRITON_GRPC_TLS_KEY go together: "
                             "set both (TLS on the local Triton's gRPC) or neither")
        return self
