"""The LLM port and its Anthropic adapter (official ``anthropic`` SDK)."""

from __future__ import annotations

from typing import Protocol

import anthropic

from visiona.kit.errors import Unavailable
from visiona.kit.logging import get_logger
from visiona.prompts.config import PromptsSettings
from visiona.prompts.domain import SYSTEM_PROMPT, Completion

log = get_logger(__name__)


class PromptEnhancer(Protocol):
    async def enhance(self, prompt: str) -> Completion: ...


class AnthropicEnhancer:
    def __init__(self, settings: PromptsSettings) -> None:
        self.model = settings.anthropic_model
        self.max_tokens = settings.llm_max_tokens
        self.client = anthropic.AsyncAnthropic(
            api_key=settings.anthropic_api_key.get_secret_value(),
            base_url=settings.anthropic_base_url,
            max_retries=settings.llm_max_retries,
            timeout=settings.llm_timeout_s,
        )

    async def enhance(self, prompt: str) -> Completion:
        try:
            message = await self.client.messages.create(
                model=self.model,
                max_tokens=self.max_tokens,
                system=SYSTEM_PROMPT,
                messages=[{"role": "user", "content": prompt}],
            )
        except (anthropic.APIConnectionError, anthropic.APIStatusError) as exc:
            # Type and status only: the provider's message may echo the prompt.
            log.warning(
                "llm.failed",
                provider="anthropic",
                error_type=type(exc).__name__,
                status=getattr(exc, "status_code", None),
                request_id=getattr(exc, "request_id", None),
            )
            raise Unavailable(
                "the prompt enhancer is unavailable; try again shortly", code="llm_unavailable"
            ) from exc
        text = "".join(block.text for block in message.content if block.type == "text").strip()
        if not text:
            raise Unavailable("the prompt enhancer returned nothing", code="llm_empty_answer")
        return Completion(
            text=text,
            model=message.model,
            input_tokens=message.usage.input_tokens,
            output_tokens=message.usage.output_tokens,
        )

    async def close(self) -> None:
        await self.client.close()
