"""Settings shared by every service; each service subclasses with its own env prefix."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class KitSettings(BaseSettings):
    """Logging and tracing: every process has these, including the gateway."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    service_name: str = "visiona"
    log_level: str = "INFO"
    log_format: Literal["json", "console"] = "json"
    otel_exporter: Literal["none", "console", "otlp"] = "none"
    otel_endpoint: str | None = None


class ServiceSettings(KitSettings):
    """A back service: its database schema and roles, the broker, gRPC and S3.

    Subclasses set ``model_config = SettingsConfigDict(env_prefix="PROMPTS_", ...)`` so that
    ``PROMPTS_DATABASE_URL`` configures the prompts service and nothing else.
    """

    database_url: SecretStr = SecretStr("postgresql+psycopg://postgres@127.0.0.1:5432/visiona")
    migration_database_url: SecretStr | None = None
    db_schema: str = "public"
    # Connections to PostgreSQL: at most db_pool_size + db_pool_overflow at once, plus one
    # for the outbox relay's LISTEN. Every replica of every service counts against the
    # server's max_connections (deploy/k8s/README.md says how to size them, or to put
    # PgBouncer in front); past the pool a unit of work waits up to db_pool_timeout_s.
    db_pool_size: int = Field(default=10, ge=1)
    db_pool_overflow: int = Field(default=10, ge=0)
    db_pool_timeout_s: float = Field(default=30.0, gt=0)

    amqp_url: SecretStr = SecretStr("amqp://guest:guest@127.0.0.1:5672/")
    events_exchange: str = "visiona.events"
    queue_prefix: str = ""
    consumer_prefetch: int = 32
    delivery_limit: int = 5
    # Consumers (visiona.kit.consumer). A handler that fails is handled again after
    # consumer_retry_pause_s times the attempt (at most 5 s) and dead-lettered once the queue's
    # delivery_limit is spent. A dependency that does not answer (database, broker, S3) is not
    # the message's fault and spends none of that budget: the delivery is kept and handled
    # again after consumer_outage_pause_s, doubling up to consumer_outage_pause_max_s, until
    # the dependency is back or the consumer stops.
    consumer_retry_pause_s: float = Field(default=0.2, ge=0)
    consumer_outage_pause_s: float = Field(default=0.5, gt=0)
    consumer_outage_pause_max_s: float = Field(default=30.0, gt=0)
    # How often a running service counts its dead-lettered messages; while any queue holds
    # some it logs the warning `bus.dead_letters` (visiona.kit.deadletters, and the
    # `dead-letters` command to list and redrive them).
    dead_letter_check_interval_s: float = Field(default=60.0, gt=0)

    grpc_host: str = "0.0.0.0"
    grpc_port: int = 50051
    grpc_grace_s: float = 10.0
    # Each client connection is closed (GOAWAY) after this long, the calls in flight given
    # the grace to finish: clients then resolve the service's name again and spread their
    # calls over the pods the autoscaler has added since (visiona.kit.metrics.grpcclient).
    grpc_max_connection_age_s: float = Field(default=300.0, gt=0)
    grpc_max_connection_age_grace_s: float = Field(default=30.0, ge=0)
    health_interval_s: float = 2.0
    # Signs and verifies the internal token every gRPC call carries (visiona.kit.internal_token):
    # the same value in every service and the gateway, at least 32 bytes; `serve` refuses to
    # start without it. During a rotation the previous value is accepted too.
    internal_token_secret: SecretStr = SecretStr("")
    internal_token_previous_secret: SecretStr | None = None

    shutdown_timeout_s: float = 20.0

    # Prometheus /metrics (visiona.kit.metrics) on its own port; each service's settings
    # give it a default of its own, 0 serves none. The gauges read from the database (the
    # outbox, the job rows) are sampled this often.
    metrics_host: str = "0.0.0.0"
    metrics_port: int = Field(default=0, ge=0, le=65535)
    metrics_sample_interval_s: float = Field(default=15.0, gt=0)

    relay_batch_size: int = 100
    relay_poll_interval_s: float = 1.0

    s3_endpoint: str | None = None
    s3_access_key: SecretStr = SecretStr("")
    s3_secret_key: SecretStr = SecretStr("")
    s3_bucket: str = "visiona"
    s3_secure: bool = False
    s3_region: str = "us-east-1"
    # Where browsers and providers reach S3, when it differs from the internal endpoint.
    s3_public_endpoint: str | None = None
    # Where providers (Replicate) fetch the objects we presign for them, when it differs from
    # the public endpoint (compose: the provider emulator runs beside MinIO, not a browser).
    s3_provider_endpoint: str | None = None
    # Server-side encryption of every object written (puts, multipart uploads, copies, and
    # browser uploads, whose POST policy then requires it): "s3" is SSE-S3 (keys the store
    # manages, AES256), "kms" is SSE-KMS under s3_sse_kms_key_id (the SDK sends it over TLS
    # only, so it needs s3_secure).
    s3_sse: Literal["none", "s3", "kms"] = "none"
    s3_sse_kms_key_id: str | None = None

    @model_validator(mode="after")
    def _sse_kms_is_complete(self) -> Self:
        if self.s3_sse == "kms" and not self.s3_sse_kms_key_id:
            raise ValueError("s3_sse=kms needs s3_sse_kms_key_id")
        if self.s3_sse == "kms" and not self.s3_secure:
            raise ValueError("s3_sse=kms needs s3_secure=true (SSE-KMS is sent over TLS only)")
        return self
