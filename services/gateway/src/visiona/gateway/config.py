"""Settings of the gateway (env prefix ``GATEWAY_``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from visiona.kit.settings import KitSettings


class GatewaySettings(KitSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore", frozen=True)

    service_name: str = "gateway"
    host: str = "127.0.0.1"
    port: int = 8000

    # Clerk: the Frontend API URL is the issuer; tokens are verified with the instance's PEM
    # public key (networkless) or, when no key is given, with the JWKS at jwks_url.
    clerk_issuer: str = "http://127.0.0.1:8104"
    clerk_authorized_parties: Annotated[list[str], NoDecode] = ["http://localhost:3000"]
    clerk_jwt_key: str | None = None
    clerk_jwks_url: str | None = None
    clock_skew_s: float = 5.0

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
    # its own, named after the prefix (see visiona.gateway.events).
    amqp_url: SecretStr = SecretStr("amqp://guest:guest@127.0.0.1:5672/")
    events_exchange: str = "visiona.events"
    queue_prefix: str = ""
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

    @field_validator("clerk_authorized_parties", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip()
            if value.startswith("["):
                import json

                return json.loads(value)
            return [part.strip() for part in value.split(",") if part.strip()]
        return value
