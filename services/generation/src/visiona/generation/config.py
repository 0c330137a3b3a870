"""Settings of the generation service (env prefix ``GENERATION_``)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from visiona.kit.settings import ServiceSettings


class GenerationSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GENERATION_", extra="ignore", frozen=True)

    service_name: str = "generation"
    db_schema: str = "generation"
    grpc_port: int = 50053

    # Synchronous questions before a generation is accepted: the model (training), the prompt
    # (prompts: moderation and enhancement) and the plan's limits (billing).
    training_addr: str = "127.0.0.1:50052"
    prompts_addr: str = "127.0.0.1:50051"
    billing_addr: str = "127.0.0.1:50054"
    backend_deadline_s: float = 5.0
    # Enhancement waits on an LLM.
    prompts_deadline_s: float = 40.0

    # Replicate: the real API with a token, or the local emulator by base URL.
    replicate_api_token: SecretStr = SecretStr("")
    replicate_base_url: str | None = None
    replicate_webhook_secret: SecretStr = SecretStr("")
    replicate_webhook_secret_previous: SecretStr | None = None
    replicate_webhook_tolerance_s: int = 300
    # The gateway's public base URL: Replicate posts to <this>/webhooks/replicate.
    public_webhook_base_url: str = "http://127.0.0.1:8000"

    # Background work (launch, poll, ingest, cancel).
    work_poll_interval_s: float = 0.5
    work_batch: int = 16
    work_lease_s: float = 60.0
    work_max_attempts: int = 8
    # Ingest attempts before the missing images are given up (released, not charged).
    ingest_max_attempts: int = 4
    # A running prediction with no news for this long is asked about (lost webhooks).
    reconcile_quiet_s: float = 20.0
    # A generation still awaiting credits this long after it asked billing asks again (the
    # request or billing's answer was lost or dead-lettered); billing holds once per
    # generation and answers a repeated request the same.
    credits_ask_again_s: float = Field(default=60.0, gt=0)
    # Largest output file copied from the provider.
    max_output_bytes: int = 50 * 1024 * 1024
    # Thumbnails: WebP, longest side.
    thumbnail_size: int = 512
    # Presigned image URLs live this long.
    url_ttl_s: int = 900
    # Finished generations' folders are swept of objects no row names (visiona.generation.
    # jobs.sweep) this long after they finish (longer than any ingest step still running), this
    # often, so many at a time.
    object_sweep_grace_s: float = 600.0
    object_sweep_interval_s: float = 60.0
    object_sweep_batch: int = 100
    # Images stored before owner keys (visiona.kit.owners) are moved to them: this often,
    # this many users at a time, until none is left.
    legacy_keys_interval_s: float = 60.0
    legacy_keys_batch: int = 20
