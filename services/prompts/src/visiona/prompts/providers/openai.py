"""GPT through the official ``openai`` SDK (Chat Completions, with its JSON mode)."""

from __future__ import annotations

import openai

from visiona.kit import metrics
from visiona.kit.logging import get_logger
from visiona.prompts.domain.judge import Completion
from visiona.prompts.providers import (
    FailureTable,
    LLMFailure,
    SdkLanguageModel,
    classify,
    failed,
)

log = get_logger(__name__)

OPENAI_FAILURES: FailureTable = (
    (openai.RateLimitError, LLMFailure.RATE_LIMITED),
    (openai.AuthenticationError, LLMFailure.NOT_CONFIGURED),
    (openai.PermissionDeniedError, LLMFailure.NOT_CONFIGURED),
    (openai.NotFoundError, LLMFailure.NOT_CONFIGURED),
    (openai.BadRequestError, LLMFailure.REJECTED),
    (openai.UnprocessableEntityError, LLMFailure.REJECTED),
    (openai.ConflictError, LLMFailure.UNAVAILABLE),
    (openai.InternalServerError, LLMFailure.UNAVAILABLE),
    (openai.APIConnectionError, LLMFailure.UNAVAILABLE),
    (openai.APIResponseValidationError, LLMFailure.UNAVAILABLE),
)
# OpenAI's 429 when the account has no quota left is no rate: it lasts until someone pays.
_OPENAI_NO_QUOTA = "insufficient_quota"
# OpenAI's 400s that are its safety system declining the prompt, not a malformed request.
OPENAI_POLICY_CODES = frozenset({"content_policy_violation", "content_filter", "invalid_prompt"})


class OpenAILLM(SdkLanguageModel[openai.AsyncOpenAI]):
    provider = "openai"
    sdk_client = openai.AsyncOpenAI

    async def complete(
        self, *, system: str, user: str, max_tokens: int, json_answer: bool = False
    ) -> Completion:
        try:
            with metrics.provider_call(self.provider, "chat.completions.create"):
                completion = await self.client.chat.completions.create(
                    model=self.model,
                    max_completion_tokens=max_tokens,
                    messages=[
                        {"role": "system", "content": system},
                        {"role": "user", "content": user},
                    ],
                    response_format={"type": "json_object"} if json_answer else openai.omit,
                )
        except openai.APIError as exc:
            if isinstance(exc, openai.BadRequestError) and exc.code in OPENAI_POLICY_CODES:
                log.info("llm.provider_refused", provider=self.provider, code=exc.code)
                return Completion(
                    text="", model=self.model, input_tokens=0, output_tokens=0,
                    provider_refused=True,
                )  # fmt: skip
            failure = classify(exc, OPENAI_FAILURES)
            if isinstance(exc, openai.RateLimitError) and exc.code == _OPENAI_NO_QUOTA:
                failure = LLMFailure.NOT_CONFIGURED
            raise failed(self.provider, exc, failure) from exc
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
