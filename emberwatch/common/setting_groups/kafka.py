"""Kafka: where the brokers are, how to sign in, how consumers retry and commit, and how
`emberwatch create-topics` makes the topics."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr


class KafkaSettings(BaseModel):
    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092", description="Kafka bootstrap servers, comma-separated (default: the local stack's, "
                                      "from EMBERWATCH_STACK_HOST and EMBERWATCH_KAFKA_PORT)."
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
        description="`emberwatch create-topics`: partitions of the topics whose consumers run as "
                    "several replicas (topic=count, comma-separated).",
    )
    kafka_default_partitions: int = Field(
        1, ge=1, description="`emberwatch create-topics`: partitions of every other topic and DLQ.")
    kafka_replication_factor: int = Field(
        1, ge=1, description="`emberwatch create-topics`: replicas of each partition (3 on a real cluster).")
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

    @property
    def kafka_servers(self) -> list[str]:
        return [s.strip() for s in self.kafka_bootstrap_servers.split(",") if s.strip()]
