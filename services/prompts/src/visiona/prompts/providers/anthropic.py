"""Claude through the official ``anthropic`` SDK (the Messages API)."""

from __future__ import annotations

import anthropic

from visiona.kit import metrics
from visiona.prompts.domain.judge import Completion
from visiona.prompts.providers import (
    FailureTable,
    LLMFailure,
    SdkLanguageModel,
    classify,
    failed,
)

ANTHROPIC_FAILURES: FailureTable = (
    (anthropic.RateLimitError, LLMFailure.RATE_LIMITED),
    (anthropic.AuthenticationError, LLMFailure.NOT_CONFIGURED),
    (anthropic.PaymentRequiredError, LLMFailure.NOT_CONFIGURED),
    (anthropic.PermissionDeniedError, LLMFailure.NOT_CONFIGURED),
    (anthropic.NotFoundError, LLMFailure.NOT_CONFIGURED),
    (anthropic.BadRequestError, LLMFailure.REJECTED),
    (anthropic.ContentTooLargeError, LLMFailure.REJECTED),
    (anthropic.UnprocessableEntityError, LLMFailure.REJECTED),
    (anthropic.RequestTimeoutError, LLMFailure.UNAVAILABLE),
    (anthropic.ConflictError, LLMFailure.UNAVAILABLE),
    (anthropic.InternalServerError, LLMFailure.UNAVAILABLE),
    (anthropic.APIConnectionError, LLMFailure.UNAVAILABLE),
    (anthropic.APIResponseValidationError, LLMFailure.UNAVAILABLE),
)


class AnthropicLLM(SdkLanguageModel[anthropic.AsyncAnthropic]):
    provider = "anthropic"
    sdk_client = anthropic.AsyncAnthropic

    async def complete(
        self, *, system: str, user: str, max_tokens: int, json_answer: bool = False
    ) -> Completion:
        # The Messages API has no JSON mode: the instructions carry the format and the caller
        # parses defensively.
        try:
            with metrics.provider_call(self.provider, "messages.create"):
                message = await self.client.messages.create(
                    model=self.model,
                    max_tokens=max_tokens,
                    system=system,
                    messages=[{"role": "user", "content": user}],
                )
        except anthropic.APIError as exc:
            raise failed(self.provider, exc, classify(exc, ANTHROPIC_FAILURES)) from exc
        text = "".join(block.text for block in message.content if block.type == "text").strip()
        return Completion(
            text=text,
            model=message.model,
            input_tokens=message.usage.input_tokens,
            output_tokens=message.usage.output_tokens,
            provider_refused=message.stop_reason == "refusal",
        )
