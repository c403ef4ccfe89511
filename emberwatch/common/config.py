"""Typed settings, read from ``EMBERWATCH_*`` environment variables (and an optional ``.env``), and
from files in a secrets directory (``EMBERWATCH_SECRETS_DIR``; compose and Kubernetes mount secrets
as files, so they never sit in a container's environment).

Every setting lives here with its default and meaning; README.md lists them (generated from this
module by ``emberwatch config``). Defaults point at the real public services where they exist and at
the local stack's addresses for the parts the stack runs.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlparse

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SecretsSettingsSource, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]
# The five services, in the order their default /metrics ports follow EMBERWATCH_SERVICES_METRICS_BASE_PORT.
SERVICE_NAMES = ("ingestor", "tiler", "trainer", "gatekeeper", "notifier")
# What EMBERWATCH_TILE_STORE_URL's prefix may hold: characters a URI carries as they are.
_S3_PREFIX = re.compile(r"[A-Za-z0-9._/-]*")
# Where compose and Docker mount secrets: the secrets directory when EMBERWATCH_SECRETS_DIR is unset.
DEFAULT_SECRETS_DIR = Path("/run/secrets")


def secrets_dir() -> Path | None:
    """The directory secret files are read from: ``EMBERWATCH_SECRETS_DIR`` (empty: none; a directory
    that does not exist is refused), else ``/run/secrets`` when it exists, else none."""
    value = os.environ.get("EMBERWATCH_SECRETS_DIR")
    if value is None:
        return DEFAULT_SECRETS_DIR if DEFAULT_SECRETS_DIR.is_dir() else None
    if not value.strip():
        return None
    path = Path(value.strip())
    if not path.is_dir():
        raise ValueError(f"EMBERWATCH_SECRETS_DIR={value!r} is not a directory")
    return path


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="EMBERWATCH_", env_file=".env", extra="ignore", secrets_dir=None
    )

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then the environment, then ``.env``, then the secrets directory's files (each
        named after its variable, e.g. ``EMBERWATCH_MAPBOX_TOKEN``; case does not matter)."""
        return (init_settings, env_settings, dotenv_settings,
                SecretsSettingsSource(settings_cls, secrets_dir=secrets_dir()))

    secrets_dir: Path | None = Field(
        None, description="Directory of secret files, one per setting, named after its variable (e.g. "
                          "EMBERWATCH_MAPBOX_TOKEN; compose and Kubernetes secrets), read after the "
                          "environment and .env. Unset: /run/secrets when it exists; empty: none. Only "
                          "from the environment.")

    # --- Kafka -------------------------------------------------------------------------------
    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092", description="Kafka bootstrap servers, comma-separated (default: the local stack's, from EMBERWATCH_STACK_HOST and EMBERWATCH_KAFKA_PORT)."
    )
    kafka_client_id: str = Field("emberwatch", description="Client id prefix used by every service.")
    kafka_security_protocol: str = Field(
        "PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."
    )
    kafka_sasl_mechanism: str = Field(
        "PLAIN", description="SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512."
    )
    kafka_sasl_username: str | None = Field(None, description="SASL user name.")
    kafka_sasl_password: SecretStr | None = Field(None, description="SASL password (secret).")
    kafka_ssl_cafile: str | None = Field(None, description="CA bundle for TLS to the brokers.")
    kafka_session_timeout_ms: int = Field(
        10000, description="Consumer session timeout; a group join takes about half of it on Tansu."
    )
    kafka_max_attempts: int = Field(
        3, description="Handler attempts for one message before it goes to <topic>.dlq."
    )
    kafka_retry_backoff_s: float = Field(0.5, description="First backoff between handler attempts.")
    kafka_batch_max_records: int = Field(
        500, ge=1,
        description="Records a consumer takes per fetch and commits together once all are handled: "
                    "the most a crash can redeliver per consumer.",
    )
    kafka_topic_partitions: str = Field(
        "fires.observed.v1=3,tiles.ready.v1=3",
        description="`emberwatch topics create`: partitions of the topics whose consumers run as "
                    "several replicas (topic=count, comma-separated).",
    )
    kafka_default_partitions: int = Field(
        1, ge=1, description="`emberwatch topics create`: partitions of every other topic and DLQ.")
    kafka_replication_factor: int = Field(
        1, ge=1, description="`emberwatch topics create`: replicas of each partition (3 on a real cluster).")
    kafka_topic_configs: str = Field(
        "*:retention.ms=-1; *.dlq:retention.ms=2592000000; pipeline.alerts.v1:retention.ms=1209600000",
        description="`emberwatch create-topics`: topic configs each new topic is created with, as "
                    "<topics>:<name>=<value>[,...] entries separated by ; where <topics> is * (every "
                    "topic and DLQ), *.dlq (every DLQ) or one topic, a later entry overriding an earlier "
                    "one. Default: the facts kept forever (they are the history `emberwatch replay` "
                    "rebuilds from), DLQs 30 days, alerts 14 days. An existing topic's configs are "
                    "compared and differences reported, never changed.",
    )
    kafka_producer_batch_bytes: int = Field(
        262144, ge=1024,
        description="Bytes the producer packs per partition into one produce request (aiokafka "
                    "max_batch_size).",
    )

    # --- external services ---------------------------------------------------------------------
    cwfis_csv_url: str = Field(
        "https://cwfis.cfs.nrcan.gc.ca/downloads/activefires/activefires.csv",
        description="Legacy CWFIS active-fires CSV; empty string switches it off.",
    )
    cwfis_wfs_url: str = Field(
        "https://geoserver.cwfif.nrcan.gc.ca/geoserver/wfs",
        description="CWFIF GeoServer WFS endpoint; empty string switches it off.",
    )
    mapbox_api_url: str = Field("https://api.mapbox.com", description="Mapbox API base URL.")
    mapbox_token: SecretStr | None = Field(None, description="Mapbox access token (secret).")
    discord_webhook_url: SecretStr | None = Field(
        None, description="Discord webhook URL (secret: it contains the token)."
    )

    coordination_url: SecretStr | None = Field(
        None,
        description="The coordination database that replicas share (SQLAlchemy URL, secret: it may "
                    "hold a password): tiler fire registry and Mapbox budget, trainer and gatekeeper "
                    "leases. Unset: SQLite at <EMBERWATCH_STATE_DIR>/coordination.sqlite3 (replicas "
                    "on one host); postgresql://user:password@host/db for replicas on several nodes.",
    )

    # --- the tile store (emberwatch/common/tile_store.py) ------------------------------------
    tile_store_url: str | None = Field(
        None,
        description="Where the tiler stores tiles. Unset (or empty): the local directory "
                    "EMBERWATCH_TILER_TILE_ROOT (file:// URIs, one host or a shared volume); "
                    "s3://bucket/prefix: an S3 bucket that every node reads (s3:// URIs). The readers "
                    "accept a tile's URI only inside this bucket and prefix or under the local root.",
    )
    tiler_tile_root: Path | None = Field(
        None, description="The local tile store's directory (tiles as <root>/<id[:2]>/<id>.<ext>): the tiler writes "
                          "there when EMBERWATCH_TILE_STORE_URL is unset, and every reader (trainer, gatekeeper, "
                          "console) accepts file:// tile URIs only under it; default <EMBERWATCH_STATE_DIR>/tiles.")
    tile_max_bytes: int = Field(
        20 * 1024 * 1024, ge=1024, description="Largest tile a reader accepts (bytes); a bigger one is refused "
                                                "unread.")
    s3_endpoint_url: str | None = Field(
        None, description="S3 endpoint of the tile store, for S3-compatible servers (e.g. SeaweedFS's S3 "
                          "gateway, http://seaweedfs:8333 on compose.yaml's network); unset: AWS S3.")
    s3_region: str | None = Field(
        None, description="Region of the tiles bucket; unset: boto3's own (AWS_REGION, ~/.aws/config, "
                          "else us-east-1).")
    s3_access_key_id: SecretStr | None = Field(
        None, description="Access key id for the tile store (secret); unset with the secret key: boto3's "
                          "default credential chain (AWS_* variables, web identity, instance profile).")
    s3_secret_access_key: SecretStr | None = Field(
        None, description="Secret access key for the tile store (secret); set together with the key id.")
    s3_connect_timeout_s: float = Field(
        5.0, gt=0, description="Timeout to connect to the S3 endpoint (a reader's own timeout bounds each read).")
    s3_read_timeout_s: float = Field(
        30.0, gt=0, description="Timeout of one S3 response for the tiler's writes.")
    s3_max_attempts: int = Field(
        4, ge=1, description="Attempts of one S3 request on connection errors, 5xx and throttling "
                             "(botocore's standard retries, backoff with jitter) before it counts as unreachable.")

    lease_ttl_s: float = Field(
        15.0, gt=0,
        description="Lease of the trainer and the gatekeeper (one active instance each): renewed every "
                    "third of it; a standby takes over within 1.2x it after the active one dies.",
    )

    # --- signed operator commands (emberwatch/security, docs/security.md) -------------------------
    command_signing_key: SecretStr | None = Field(
        None, description="This process's Ed25519 private key (PEM, secret) for signing operator commands: "
                          "the console's, the Discord bot's (the notifier) or a person's CLI; compose and "
                          "Kubernetes mount it as the file EMBERWATCH_COMMAND_SIGNING_KEY in the secrets "
                          "directory. Unset: <EMBERWATCH_COMMAND_KEYS_DIR>/<issuer>.key.")
    command_keys_dir: Path | None = Field(
        None, description="Where this host keeps command keys: <issuer>.key private keys (made by `emberwatch "
                          "keys create` and, for the local console, bot and CLI user, by `emberwatch stack up`) "
                          "and trusted/, the public keys the gatekeeper accepts by default. Default "
                          "<EMBERWATCH_STATE_DIR>/keys.")
    command_trusted_keys_dir: Path | None = Field(
        None, description="The gatekeeper's trusted public keys: the issuers whose signed operator commands it "
                          "carries out, one PEM file each, <issuer>.pub (operator.alice.pub for operator:alice); "
                          "removing a file revokes that issuer at its next command. Default "
                          "<EMBERWATCH_COMMAND_KEYS_DIR>/trusted.")
    command_issuer: str | None = Field(
        None, description="Who signs the commands the CLI sends (emberwatch promote, rollback, approve, reject): "
                          "operator:<name>, whose key may only ask as cli:<name>. Default operator:<OS user>.")

    # --- the operator console's named operators (emberwatch/security/console_operators.py) ------
    console_operators_file: Path | None = Field(
        None, description="The console's named operators: one `name:scrypt$...` line each, written by "
                          "`emberwatch console-operator add/remove` and re-read by the console on a change "
                          "(a removed operator's sessions end). Unset: `console_operators` in the secrets "
                          "directory when there is one, else <EMBERWATCH_STATE_DIR>/console/operators.")

    # --- local stack -------------------------------------------------------------------------
    mlflow_tracking_uri: str = Field("http://127.0.0.1:5000", description="MLflow tracking server (default: the local stack's, from EMBERWATCH_MLFLOW_PORT).")
    mlflow_tracking_username: str | None = Field(
        None, description="MLflow basic-auth user to sign in as (unset: MLflow's own MLFLOW_TRACKING_USERNAME, if any; "
                          "the local stack's MLflow needs none).")
    mlflow_tracking_password: SecretStr | None = Field(
        None, description="Password of EMBERWATCH_MLFLOW_TRACKING_USERNAME (secret; compose mounts it as a file "
                          "under EMBERWATCH_SECRETS_DIR), handed to the MLflow client inside the process.")
    triton_url: str = Field("127.0.0.1:8000", description="Triton HTTP endpoint host:port (default: the local stack's, from EMBERWATCH_TRITON_HTTP_PORT).")
    triton_grpc_url: str = Field("127.0.0.1:8001", description="Triton gRPC endpoint host:port (default: the local stack's, from EMBERWATCH_TRITON_GRPC_PORT).")
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
    state_dir: Path = Field(
        REPO_ROOT / ".state", description="Where the stack keeps state, logs and PID files."
    )
    triton_model_repository: Path = Field(
        REPO_ROOT / ".state" / "triton_models",
        description="The model repository Triton serves (explicit model control), written by the "
        "gatekeeper alone from the templates in triton_models/ (default: <EMBERWATCH_STATE_DIR>/triton_models).",
    )
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
        "prometheus, sim-cwfis, sim-mapbox, sim-discord, ingestor, tiler, trainer, gatekeeper, notifier, console.",
    )

    # --- observability -----------------------------------------------------------------------
    metrics_host: str = Field("127.0.0.1", description="Address each service's /metrics binds to.")
    metrics_port: int | None = Field(
        None, description="Port of this service's /metrics (unset: the service's own default, "
        "EMBERWATCH_SERVICES_METRICS_BASE_PORT + its place; 0 = choose a free port)."
    )
    log_level: str = Field("INFO", description="Log level for structured logs on stderr.")
    log_format: str = Field("json", description="json (structured) or console.")

    @field_validator("tile_store_url", "s3_endpoint_url", "s3_region", "secrets_dir", "triton_grpc_tls_ca",
                     "triton_grpc_tls_cert", "triton_grpc_tls_key", "console_operators_file", mode="before")
    @classmethod
    def _empty_means_unset(cls, value: object) -> object:
        """An empty variable (as an optional Kubernetes Secret key can leave) means unset."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("tile_store_url")
    @classmethod
    def _tile_store_url_is_s3(cls, value: str | None) -> str | None:
        """Refuse at start what the tile store could not use, naming the setting."""
        if value is None:
            return None
        value = value.strip()
        parsed = urlparse(value)
        if parsed.scheme != "s3" or not parsed.netloc or parsed.query or parsed.fragment:
            raise ValueError(f"EMBERWATCH_TILE_STORE_URL must be unset or s3://bucket/prefix, got {value!r}")
        if not _S3_PREFIX.fullmatch(parsed.path):
            raise ValueError("EMBERWATCH_TILE_STORE_URL: the prefix may hold only letters, digits and "
                             f"._-/ (it becomes part of every tile's URI), got {parsed.path!r}")
        return value

    @model_validator(mode="after")
    def _tls_certificate_with_its_key(self) -> Settings:
        """The local Triton's gRPC TLS needs both files: refuse one without the other at start."""
        if (self.triton_grpc_tls_cert is None) != (self.triton_grpc_tls_key is None):
            raise ValueError("EMBERWATCH_TRITON_GRPC_TLS_CERT and EMBERWATCH_TRITON_GRPC_TLS_KEY go together: "
                             "set both (TLS on the local Triton's gRPC) or neither")
        return self

    @model_validator(mode="after")
    def _local_addresses_follow_ports(self) -> Settings:
        """Unless set explicitly, the local stack's addresses follow its ports (EMBERWATCH_*_PORT)."""
        derived = {
            "kafka_bootstrap_servers": f"{self.stack_host}:{self.kafka_port}",
            "mlflow_tracking_uri": f"http://{self.stack_host}:{self.mlflow_port}",
            "triton_url": f"{self.stack_host}:{self.triton_http_port}",
            "triton_grpc_url": f"{self.stack_host}:{self.triton_grpc_port}",
            "triton_model_repository": Path(self.state_dir) / "triton_models",
            "secrets_dir": secrets_dir(),  # the directory the files were read from
        }
        for name, value in derived.items():
            if name not in self.model_fields_set:
                object.__setattr__(self, name, value)
        return self

    @property
    def tile_root(self) -> Path:
        """The local tile store's directory: EMBERWATCH_TILER_TILE_ROOT, else <state_dir>/tiles."""
        return self.tiler_tile_root or (self.state_dir / "tiles")

    def service_metrics_port(self, service: str) -> int:
        """The /metrics port of ``service``: EMBERWATCH_METRICS_PORT when set, else its own default."""
        if self.metrics_port is not None:
            return self.metrics_port
        if service not in SERVICE_NAMES:
            raise ValueError(f"unknown service {service!r}; known: {', '.join(SERVICE_NAMES)}")
        return self.services_metrics_base_port + SERVICE_NAMES.index(service)

    @property
    def kafka_servers(self) -> list[str]:
        return [s.strip() for s in self.kafka_bootstrap_servers.split(",") if s.strip()]


S = TypeVar("S", bound=Settings)


def narrow(settings: Settings | None, cls: type[S]) -> S:
    """The service's own typed settings (``cls``) from the common ones: the same values, plus the
    service's fields from the environment. Every service narrows its settings this one way."""
    if settings is None:
        return cls()
    if isinstance(settings, cls):
        return settings
    return cls(**settings.model_dump(exclude_unset=False))


@lru_cache
def get_settings() -> Settings:
    return Settings()
