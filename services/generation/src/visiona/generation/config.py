"""Settings of the generation service (env prefix ``GENERATION_``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from visiona.kit.replicate import ReplicateServiceSettings


class GenerationSettings(ReplicateServiceSettings):
    """Replicate's account and webhooks, the background work's timings, asking billing again
    and the legacy keys' move are the kit's (visiona.kit.replicate.ReplicateServiceSettings)."""

    model_config = SettingsConfigDict(env_prefix="GENERATION_", extra="ignore", frozen=True)

    service_name: str = "generation"
    db_schema: str = "generation"
    grpc_port: int = 50053
    metrics_port: int = 9463

    # Synchronous questions before a generation is accepted: the model (training), the prompt
    # (prompts: moderation and enhancement) and the plan's limits (billing).
    training_addr: str = "127.0.0.1:50052"
    prompts_addr: str = "127.0.0.1:50051"
    billing_addr: str = "127.0.0.1:50054"
    backend_deadline_s: float = 5.0
    # Enhancement waits on an LLM.
    prompts_deadline_s: float = 40.0

    # Background work (launch, poll, ingest, cancel): its defaults differ from the kit's.
    work_poll_interval_s: float = 0.5
    work_batch: int = 16
    reconcile_quiet_s: float = 20.0
    # Ingest attempts before the missing images are given up (released, not charged).
    ingest_max_attempts: int = 4
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
