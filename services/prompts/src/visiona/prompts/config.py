"""Settings of the prompts service (env prefix ``PROMPTS_``)."""

from __future__ import annotations

from typing import Literal

from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from visiona.kit.settings import ServiceSettings


class PromptsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PROMPTS_", extra="ignore", frozen=True)

    service_name: str = "prompts"
    db_schema: str = "prompts"
    grpc_port: int = 50051
    metrics_port: int = 9461

    # Which LLM adapter enhances and judges prompts.
    llm_provider: Literal["anthropic", "openai"] = "anthropic"

    anthropic_api_key: SecretStr = SecretStr("")
    # None means the real API; locally the Anthropic emulator's address (no /v1).
    anthropic_base_url: str | None = None
    anthropic_model: str = "claude-sonnet-4-6"

    openai_api_key: SecretStr = SecretStr("")
    # None means the real API; locally the OpenAI emulator's address, with /v1.
    openai_base_url: str | None = None
    openai_model: str = "gpt-4o"

    llm_max_tokens: int = 400
    # The moderation-only judgement is a one-line JSON answer.
    llm_judge_max_tokens: int = 60
    llm_timeout_s: float = 30.0
    llm_max_retries: int = 2

    # How long an identical PreparePrompt request is answered from the cache.
    prompt_cache_ttl_s: int = 24 * 3600
    prompt_cache_sweep_interval_s: float = 3600.0

    def llm_vendor(self, provider: str) -> tuple[str, SecretStr, str | None]:
        """One LLM vendor's model, API key and address (``provider`` as the adapter names it)."""
        vendors = {
            "anthropic": (self.anthropic_model, self.anthropic_api_key, self.anthropic_base_url),
            "openai": (self.openai_model, self.openai_api_key, self.openai_base_url),
        }
        return vendors[provider]
