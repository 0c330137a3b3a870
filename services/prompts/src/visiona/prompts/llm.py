"""The LLM port and its adapters, each on its provider's official SDK: Anthropic
(``anthropic``) and OpenAI (``openai``). ``PROMPTS_LLM_PROVIDER`` picks one. Each SDK error
class maps to one :class:`LLMFailure`; the service turns it into a status.

Adapters never log prompt text: the provider's error message may echo it, so only the error
type, status and request id are logged.
"""

from __future__ import annotations

import enum
from typing import Protocol

import anthropic
import openai

from visiona.kit.logging import get_logger
from visiona.prompts.config import PromptsSettings
from visiona.prompts.domain import Completion

log = get_logger(__name__)


class LLMFailure(enum.Enum):
    """Why the LLM gave no answer (:data:`ANTHROPIC_FAILURES`, :data:`OPENAI_FAILURES`)."""

    UNAVAILABLE = "unavailable"  # no answer, a timeout, 5xx, overloaded, after the SDK's retries
    RATE_LIMITED = "rate_limited"  # 429: our account's rate, for now
    REJECTED = "rejected"  # 400, 413, 422: this request (the user's prompt in it) is refused
    NOT_CONFIGURED = "not_configured"  # 401, 402, 403, 404: our key, account or model name


# Each SDK's error classes, most specific first; a status class neither lists is judged by its
# status (4xx REJECTED, else UNAVAILABLE). A connection error covers timeouts.
ANTHROPIC_FAILURES: tuple[tuple[type[Exception], LLMFailure], ...] = (
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
OPENAI_FAILURES: tuple[tuple[type[Exception], LLMFailure], ...] = (
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


def classify(exc: Exception, table: tuple[tuple[type[Exception], LLMFailure], ...]) -> LLMFailure:
    for cls, failure in table:
        if isinstance(exc, cls):
            return failure
    status = getattr(exc, "status_code", None)
    return LLMFailure.REJECTED if status and 400 <= status < 500 else LLMFailure.UNAVAILABLE


class LLMError(Exception):
    """The LLM gave no answer; ``failure`` says why, ``transient`` whether asking again
    later can help."""

    def __init__(
        self, provider: str, error_type: str, status: int | None, failure: LLMFailure
    ) -> None:
        super().__init__(f"{provider} failed: {error_type} ({status}, {failure.value})")
        self.provider = provider
        self.error_type = error_type
        self.status = status
        self.failure = failure

    @property
    def transient(self) -> bool:
        return self.failure in (LLMFailure.UNAVAILABLE, LLMFailure.RATE_LIMITED)


class LanguageModel(Protocol):
    """One question, one answer. ``json_answer`` asks the provider for a JSON object where it
    has such a mode; the instructions must ask for JSON either way. A prompt the provider's
    own safety system declines is an answer (``provider_refused``), not an error."""

    provider: str
    model: str

    async def complete(
        self, *, system: str, user: str, max_tokens: int, json_answer: bool = False
    ) -> Completion: ...

    async def close(self) -> None: ...


def _failed(provider: str, exc: Exception, failure: LLMFailure) -> LLMError:
    status = getattr(exc, "status_code", None)
    error = LLMError(provider, type(exc).__name__, status, failure)
    # A transient failure is the provider's; any other is ours or the request's: louder.
    (log.warning if error.transient else log.error)(
        "llm.failed",
        provider=provider,
        error_type=error.error_type,
        status=status,
        failure=failure.value,
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
        except anthropic.APIError as exc:
            raise _failed(self.provider, exc, classify(exc, ANTHROPIC_FAILURES)) from exc
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
            raise _failed(self.provider, exc, failure) from exc
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
