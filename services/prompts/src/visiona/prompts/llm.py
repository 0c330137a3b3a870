"""The LLM port and its adapters, each on its provider's official SDK: Anthropic
(``anthropic``) and OpenAI (``openai``). ``PROMPTS_LLM_PROVIDER`` picks one.

Adapters never log prompt text: the provider's error message may echo it, so only the error
type, status and request id are logged.
"""

from __future__ import annotations

from typing import Protocol

import anthropic
import openai

from visiona.kit.logging import get_logger
from visiona.prompts.config import PromptsSettings
from visiona.prompts.domain import Completion

log = get_logger(__name__)


class LLMUnavailable(Exception):
    """The LLM gave no answer: unreachable, timed out, rate-limited or failing after the
    SDK's retries (``transient``), or refusing our request (bad key, unknown model)."""

    def __init__(self, provider: str, error_type: str, status: int | None) -> None:
        super().__init__(f"{provider} unavailable: {error_type} ({status})")
        self.provider = provider
        self.error_type = error_type
        self.status = status

    @property
    def transient(self) -> bool:
        return self.status is None or self.status in (408, 409, 429) or self.status >= 500


class LanguageModel(Protocol):
    """One question, one answer. ``json_answer`` asks the provider for a JSON object where it
    has such a mode; the instructions must ask for JSON either way."""

    provider: str
    model: str

    async def complete(
        self, *, system: str, user: str, max_tokens: int, json_answer: bool = False
    ) -> Completion: ...

    async def close(self) -> None: ...


def _unavailable(provider: str, exc: Exception) -> LLMUnavailable:
    status = getattr(exc, "status_code", None)
    error = LLMUnavailable(provider, type(exc).__name__, status)
    # A transient failure is the provider's; any other is ours (key, model): louder.
    (log.warning if error.transient else log.error)(
        "llm.failed",
        provider=provider,
        error_type=error.error_type,
        status=status,
        request_id=getattr(exc, "request_id", None),
    )
    return error


class AnthropicLLM:
    provider = "anthropic"

    def __init__(self, settings: PromptsSettings) -> None:
        self.model = settings.anthropic_model
        self.client = anthropic.AsyncAnthropic(
            api_key=settings.anthropic_api_key.get_secret_value(),
            base_url=settings.anthropic_base_url,
            max_retries=settings.llm_max_retries,
            timeout=settings.llm_timeout_s,
        )

    async def complete(
        self, *, system: str, user: str, max_tokens: int, json_answer: bool = False
    ) -> Completion:
        # The Messages API has no JSON mode: the instructions carry the format and the caller
        # parses defensively.
        try:
            message = await self.client.messages.create(
                model=self.model,
                max_tokens=max_tokens,
                system=system,
                messages=[{"role": "user", "content": user}],
            )
        except (anthropic.APIConnectionError, anthropic.APIStatusError) as exc:
            raise _unavailable(self.provider, exc) from exc
        text = "".join(block.text for block in message.content if block.type == "text").strip()
        return Completion(
            text=text,
            model=message.model,
            input_tokens=message.usage.input_tokens,
            output_tokens=message.usage.output_tokens,
            provider_refused=message.stop_reason == "refusal",
        )

    async def close(self) -> None:
        await self.client.close()


class OpenAILLM:
    provider = "openai"

    def __init__(self, settings: PromptsSettings) -> None:
        self.model = settings.openai_model
        self.client = openai.AsyncOpenAI(
            api_key=settings.openai_api_key.get_secret_value(),
            base_url=settings.openai_base_url,
            max_retries=settings.llm_max_retries,
            timeout=settings.llm_timeout_s,
        )

    async def complete(
        self, *, system: str, user: str, max_tokens: int, json_answer: bool = False
    ) -> Completion:
        try:
            completion = await self.client.chat.completions.create(
                model=self.model,
                max_completion_tokens=max_tokens,
                messages=[
                    {"role": "system", "content": system},
                    {"role": "user", "content": user},
                ],
                response_format={"type": "json_object"} if json_answer else openai.omit,
            )
        except (openai.APIConnectionError, openai.APIStatusError) as exc:
            raise _unavailable(self.provider, exc) from exc
        choice = completion.choices[0] if completion.choices else None
        usage = completion.usage
        text = (choice.message.content or "").strip() if choice else ""
        refused = choice is not None and (
            choice.finish_reason == "content_filter" or bool(choice.message.refusal)
        )
        return Completion(
            text=text,
            model=completion.model,
            input_tokens=usage.prompt_tokens if usage else 0,
            output_tokens=usage.completion_tokens if usage else 0,
            provider_refused=refused,
        )

    async def close(self) -> None:
        await self.client.close()


def language_model(settings: PromptsSettings) -> LanguageModel:
    """The adapter ``settings.llm_provider`` names."""
    if settings.llm_provider == "openai":
        return OpenAILLM(settings)
    return AnthropicLLM(settings)
