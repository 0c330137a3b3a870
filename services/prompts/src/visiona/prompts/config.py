"""Settings of the prompts service (env prefix ``PROMPTS_``)."""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from visiona.kit.settings import ServiceSettings


class PromptsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PROMPTS_", extra="ignore", frozen=True)

    service_name: str = "prompts"
    db_schema: str = "prompts"
    grpc_port: int = 50051

    anthropic_api_key: SecretStr = SecretStr("")
    # None means the real API; locally the Anthropic emulator's address (no /v1).
    anthropic_base_url: str | None = None
    anthropic_model: str = "claude-sonnet-4-6"
    llm_max_tokens: int = 400
    llm_timeout_s: float = 30.0
    llm_max_retries: int = 2
