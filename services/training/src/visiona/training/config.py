"""Settings of the training service (env prefix ``TRAINING_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from visiona.kit.replicate import ReplicateServiceSettings


class TrainingSettings(ReplicateServiceSettings):
    """Replicate's account and webhooks, the background work's timings, asking billing again
    and the legacy keys' move are the kit's (visiona.kit.replicate.ReplicateServiceSettings)."""

    model_config = SettingsConfigDict(env_prefix="TRAINING_", extra="ignore", frozen=True)

    service_name: str = "training"
    db_schema: str = "training"
    grpc_port: int = 50052
    metrics_port: int = 9462

    # Billing answers the plan's limits (GetEntitlements) before a training is accepted.
    billing_addr: str = "127.0.0.1:50054"
    billing_deadline_s: float = 5.0

    # Uploads: one presigned POST per photo, valid this long, up to this size.
    upload_max_bytes: int = 20 * 1024 * 1024
    upload_expires_s: int = 900
    # Photo slots never completed are removed this long after their policy expired.
    upload_abandoned_after_s: float = 3600.0
    # The upload sweep (visiona.training.jobs.upload_sweep): this often, the next this many keys
    # under uploads/ are looked at, and those no open slot owns are deleted (an upload policy
    # cannot be revoked: a completed slot's key can be posted again until it expires).
    upload_sweep_interval_s: float = Field(default=60.0, gt=0)
    upload_sweep_batch: int = Field(default=500, ge=1)
    max_photos_per_user: int = 300
    # Validation thresholds (see visiona.training.domain.photo.validate_photo).
    min_short_side: int = 512
    max_pixels: int = 40_000_000
    blur_threshold: float = 60.0
    duplicate_distance: int = 6

    # The account that owns destination models, and the trainer.
    replicate_owner: str = "visiona"
    replicate_trainer: str = "ostris/flux-dev-lora-trainer"
    replicate_trainer_version: str = (
        "d8aa01550cc45369716371bfc0ed16f697fd87eef9d73edcc5e328abcb46c485"
    )
    replicate_hardware: str = "gpu-t4"
    # Largest LoRA weights file copied from the provider (a Flux LoRA is tens to hundreds of MB).
    max_weights_bytes: int = 2 * 1024 * 1024 * 1024
    # How long the provider may fetch the dataset through its presigned URL.
    dataset_url_ttl_s: int = 3600

    # A ready model's trained version is asked about this often; one the provider no longer
    # has makes the model unavailable (a refused prediction has it asked at once).
    version_check_interval_s: float = Field(default=6 * 3600.0, gt=0)

    # Account erasure (visiona.training.account): how often a round waiting for the model
    # purges it started looks again, and how long the answer given to a round (no user in it)
    # is kept to answer a repeated request the same.
    erasure_recheck_s: float = Field(default=1.0, gt=0)
    erasure_answers_kept_s: float = Field(default=30 * 24 * 3600.0, gt=0)

    # Retention (visiona.training.jobs.retention, ADR 0007): training photos and a model's dataset
    # zip are deleted this long after the last training that used them ended (photos never
    # used in a training: this long after upload). The model and its weights are kept.
    photo_retention_s: float = Field(default=30 * 24 * 3600.0, gt=0)
    # How often each replica sweeps for what the retention has made due (work is claimed
    # row by row, so replicas sweeping at once never do the same deletion twice).
    retention_sweep_interval_s: float = Field(default=3600.0, gt=0)
    # Rows examined per query of the sweep.
    retention_batch: int = Field(default=50, ge=1)
