"""Settings of the generation service (env prefix ``GENERATION_``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from visiona.kit.settings import ServiceSettings


class GenerationSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GENERATION_", extra="ignore", frozen=True)

    service_name: str = "generation"
    db_schema: str = "generation"
    grpc_port: int = 50053
