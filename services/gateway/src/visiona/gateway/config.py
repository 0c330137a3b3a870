"""Settings of the gateway (env prefix ``GATEWAY_``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from visiona.kit.auth import RENEWAL_HINT
from visiona.kit.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    """The edge. Like a back service it has a schema of its own (deletion and export requests,
    idempotency keys, rate-limit buckets, accounts, the audit log), an outbox and consumers on
    the bus, and S3 (exports); it serves HTTP, not gRPC."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore", frozen=True)

    service_name: str = "gateway"
    db_schema: str = "gateway"
    host: str = "127.0.0.1"
    port: int = 8000

    # Clerk: the Frontend API URL is the issuer; tokens are verified with the instance's PEM
    # public key (networkless) or, when no key is given, with the JWKS at jwks_url.
    clerk_issuer: str = "http://127.0.0.1:8104"
    clerk_authorized_parties: Annotated[list[str], NoDecode] = ["http://localhost:3000"]
    clerk_jwt_key: str | None = None
    clerk_jwks_url: str | None = None
    clock_skew_s: float = 5.0
    # What the 401 for an expired session token tells its holder to do (the local stack
    # names its own way to a new token).
    session_renewal_hint: str = RENEWAL_HINT

    # Clerk's Backend API (an erased account's sign-in is deleted too) and its user webhooks
    # (Svix-signed; the previous secret is accepted during a rotation).
    clerk_api_url: str = "https://api.clerk.com/v1"
    clerk_secret_key: SecretStr | None = None
    clerk_webhook_secret: SecretStr | None = None
    clerk_webhook_previous_secret: SecretStr | None = None

    # Operators (the /v1/admin routes, visiona.gateway.edge.auth.is_operator): Clerk user ids
    # (comma-separated or a JSON list), and/or a role their session token carries at
    # ``operator_role_claim`` (a dotted path into the claims; Clerk's session token carries
    # the user's public metadata as ``metadata`` once the instance's session token template
    # says ``{"metadata": "{{user.public_metadata}}"}``). Either suffices; neither set: nobody.
    operator_user_ids: Annotated[list[str], NoDecode] = []
    operator_role: str | None = None
    operator_role_claim: str = "metadata.role"

    # Keys hashes that stand in for a user id or an IP where we must not keep them (erasure
    # receipts, rate-limit buckets, the audit log). Required; at least 32 bytes.
    pseudonym_key: SecretStr = SecretStr("")

    # Account erasure (visiona.gateway.account.erasure). The first round waits until nothing the user
    # started before asking can still write: requests in flight (the longest deadline) and the
    # photo upload policies already handed out (15 minutes), hence 16 minutes. A round not
    # answered by every service within the timeout is asked again; rounds repeat, a little
    # apart, until one removes nothing.
    erasure_grace_s: float = Field(default=960.0, ge=0)
    erasure_settle_s: float = Field(default=5.0, ge=0)
    erasure_round_timeout_s: float = Field(default=120.0, gt=0)
    # The erasure journal (docs/adr/0014-backups-and-restore.md): the backup bucket, on the
    # gateway's S3, where each accepted erasure leaves ``erasures/<pseudonym>.json`` so that a
    # restore of an older backup erases the user again. None: no journal (no backups taken).
    erasure_journal_bucket: str | None = None
    # Exports (visiona.gateway.account.export): parts are asked again after the timeout and the
    # export fails after the deadline; the archive is kept for the TTL and each download link
    # lasts for the link TTL.
    export_part_timeout_s: float = Field(default=300.0, gt=0)
    export_deadline_s: float = Field(default=6 * 3600.0, gt=0)
    export_ttl_s: float = Field(default=7 * 24 * 3600.0, gt=0)
    export_link_ttl_s: float = Field(default=900.0, gt=0, le=7 * 24 * 3600.0)
    saga_poll_interval_s: float = Field(default=1.0, gt=0)

    prompts_addr: str = "127.0.0.1:50051"
    training_addr: str = "127.0.0.1:50052"
    generation_addr: str = "127.0.0.1:50053"
    billing_addr: str = "127.0.0.1:50054"
    grpc_deadline_s: float = 10.0
    # Enhancement waits on an LLM, which can take longer than a plain read.
    llm_deadline_s: float = 45.0
    readiness_timeout_s: float = 1.0
    # Checkout and portal sessions wait on Stripe.
    payments_deadline_s: float = 20.0
    # Validating an uploaded photo decodes it fully and looks for faces.
    upload_deadline_s: float = 30.0
    # Largest webhook body accepted (Stripe events are a few KB).
    webhook_max_bytes: int = 512 * 1024
    # Replicate's completed-training webhook carries the whole training log.
    replicate_webhook_max_bytes: int = 4 * 1024 * 1024

    # Live events (GET /v1/events): each instance reads the event exchange through a queue of
    # its own, named after the prefix (see visiona.gateway.live.feed).
    amqp_reconnect_s: float = Field(default=2.0, gt=0)
    # A comment line this often keeps proxies and load balancers from closing an idle stream.
    sse_heartbeat_s: float = Field(default=15.0, gt=0)
    # The `retry:` hint: how long EventSource waits before reconnecting.
    sse_retry_ms: int = Field(default=3000, ge=0)
    # Per user: the last N events, no older than this, replayed on reconnect (Last-Event-ID).
    sse_replay_size: int = Field(default=100, ge=1)
    sse_replay_max_age_s: float = Field(default=300.0, gt=0)
    # Per stream: events waiting for a slow client; when full, the client is disconnected.
    sse_client_queue: int = Field(default=256, ge=1)
    # A write that stalls this long (the client stopped reading) ends the stream.
    sse_send_timeout_s: float = Field(default=30.0, gt=0)

    # The edge (visiona.gateway.edge.ratelimit, .idempotency, .security). Rate limits are per
    # client IP on every request (health checks aside) and per user on signed-in ones; buckets
    # live in the gateway's database, so every instance shares them. A rate of 0 turns that
    # limit off. Webhooks have a per-IP bucket of their own, generous: providers burst
    # (Stripe after an outage) and the body is verified before anything is done with it.
    user_rate_per_s: float = Field(default=10.0, ge=0)
    user_burst: int = Field(default=40, ge=1)
    ip_rate_per_s: float = Field(default=30.0, ge=0)
    ip_burst: int = Field(default=100, ge=1)
    webhook_rate_per_s: float = Field(default=50.0, ge=0)
    webhook_burst: int = Field(default=500, ge=1)
    # An edge check slower than this lets the request through (rate limits fail open).
    edge_check_timeout_s: float = Field(default=2.0, gt=0)
    # Idempotency-Key: responses are replayed for this long; an attempt whose gateway died
    # is taken over by a retry after the lease (longer than the longest request deadline).
    idempotency_ttl_s: float = Field(default=24 * 3600.0, gt=0)
    idempotency_lease_s: float = Field(default=90.0, gt=0)
    # Expired buckets and keys are deleted this often (by every instance; it is idempotent).
    edge_sweep_interval_s: float = Field(default=60.0, gt=0)
    # Largest request body outside /webhooks (photos go to S3 directly; the API takes JSON).
    max_body_bytes: int = Field(default=1024 * 1024, ge=0)
    # Browser origins allowed to call the API (comma-separated or a JSON list).
    cors_origins: Annotated[list[str], NoDecode] = ["http://localhost:3000"]
    # The public URL is https (production): send HSTS. Never over plain http locally.
    served_over_https: bool = False
    hsts_max_age_s: int = Field(default=2 * 365 * 24 * 3600, ge=0)

    @field_validator("clerk_authorized_parties", "cors_origins", "operator_user_ids", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip()
            if value.startswith("["):
                import json

                return json.loads(value)
            return [part.strip() for part in value.split(",") if part.strip()]
        return value
