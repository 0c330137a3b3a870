"""The LLM port and one adapter per vendor, each on its provider's official SDK:
:mod:`.anthropic` (``anthropic``) and :mod:`.openai` (``openai``). ``PROMPTS_LLM_PROVIDER``
picks one (:func:`language_model`). Each SDK error class maps to one :class:`LLMFailure`; the
service turns it into a status.

Adapters never log prompt text: the provider's error message may echo it, so only the error
type, status and request id are logged.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from visiona.kit.logging import get_logger
from visiona.prompts.config import PromptsSettings
from visiona.prompts.domain.judge import Completion

log = get_logger(__name__)


class LLMFailure(enum.Enum):
    """Why the LLM gave no answer (each adapter's table of its SDK's error classes)."""

    UNAVAILABLE = "unavailable"  # no answer, a timeout, 5xx, overloaded, after the SDK's retries
    RATE_LIMITED = "rate_limited"  # 429: our account's rate, for now
    REJECTED = "rejected"  # 400, 413, 422: this request (the user's prompt in it) is refused
    NOT_CONFIGURED = "not_configured"  # 401, 402, 403, 404: our key, account or model name


# An SDK's error classes, most specific first; a status class the table does not list is
# judged by its status (4xx REJECTED, else UNAVAILABLE). A connection error covers timeouts.
FailureTable = tuple[tuple[type[Exception], LLMFailure], ...]


def classify(exc: Exception, table: FailureTable) -> LLMFailure:
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


class _SdkClient(Protocol):
    async def close(self) -> None: ...


Client = TypeVar("Client", bound=_SdkClient)


class SdkLanguageModel(Generic[Client]):
    """What the adapters share: their vendor's model, and the SDK's async client made from the
    vendor's key and address with the service's retries and timeout (both SDKs take the same
    arguments), closed with the process."""

    provider: str
    sdk_client: Callable[..., Client]

    def __init__(self, settings: PromptsSettings) -> None:
        self.model, api_key, base_url = settings.llm_vendor(self.provider)
        self.client = self.sdk_client(
            api_key=api_key.get_secret_value(),
            base_url=base_url,
            max_retries=settings.llm_max_retries,
            timeout=settings.llm_timeout_s,
        )

    async def close(self) -> None:
        await self.client.close()


def failed(provider: str, exc: Exception, failure: LLMFailure) -> LLMError:
    """The error an adapter raises for ``exc``, logged without the provider's message."""
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


def language_model(settings: PromptsSettings) -> LanguageModel:
    """The adapter ``settings.llm_provider`` names.

    Imported here, not above: each SDK is slow to import, and a process needs only its own
    (``migrate`` needs neither).
    """
    if settings.llm_provider == "openai":
        from visiona.prompts.providers.openai import OpenAILLM

        return OpenAILLM(settings)
    from visiona.prompts.providers.anthropic import AnthropicLLM

    return AnthropicLLM(settings)
