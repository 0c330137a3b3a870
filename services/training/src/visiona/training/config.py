"""Settings of the training service (env prefix ``TRAINING_``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from visiona.kit.settings import ServiceSettings


class TrainingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TRAINING_", extra="ignore", frozen=True)

    service_name: str = "training"
    db_schema: str = "training"
    grpc_port: int = 50052
