"""What a failed Replicate call means (:class:`Failure`, :class:`ProviderError`), and a
webhook that does not check out (:class:`InvalidWebhook`)."""

from __future__ import annotations

import enum

from replicate.exceptions import ReplicateError

from visiona.kit.errors import (
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    ResourceExhausted,
    Unavailable,
)


class Failure(enum.Enum):
    """What a failed Replicate call means (:data:`FAILURE_BY_STATUS`)."""

    UNAVAILABLE = "unavailable"  # no answer, a timeout, a 5xx: Replicate's trouble, retried
    RATE_LIMITED = "rate_limited"  # 429: retried later
    GONE = "gone"  # 404, 410: the version, training or prediction is no more
    INVALID = "invalid"  # 400, 413, 422 (and any other 4xx): the input is refused
    CONFLICT = "conflict"  # 409: not in a state that allows it (a finished job)
    NOT_CONFIGURED = "not_configured"  # 401, 402, 403: our token, account or its billing


# The SDK raises one class (ReplicateError) for every status: the status decides.
FAILURE_BY_STATUS: dict[int, Failure] = {
    400: Failure.INVALID,
    401: Failure.NOT_CONFIGURED,
    402: Failure.NOT_CONFIGURED,
    403: Failure.NOT_CONFIGURED,
    404: Failure.GONE,
    408: Failure.UNAVAILABLE,
    409: Failure.CONFLICT,
    410: Failure.GONE,
    413: Failure.INVALID,
    422: Failure.INVALID,
    429: Failure.RATE_LIMITED,
}

# For a call a request waits on (a webhook's signing secret): the status and stable code.
_DOMAIN_ERRORS: dict[Failure, tuple[type[DomainError], str, str]] = {
    Failure.UNAVAILABLE: (Unavailable, "replicate_unavailable", "Replicate is unavailable"),
    Failure.RATE_LIMITED: (
        ResourceExhausted,
        "replicate_rate_limited",
        "Replicate is rate limiting us; try again in a minute",
    ),
    Failure.GONE: (FailedPrecondition, "replicate_object_gone", "Replicate no longer has it"),
    Failure.INVALID: (InvalidArgument, "replicate_input_refused", "Replicate refused the input"),
    Failure.CONFLICT: (
        FailedPrecondition,
        "replicate_conflict",
        "Replicate's object is not in a state that allows it",
    ),
    Failure.NOT_CONFIGURED: (
        FailedPrecondition,
        "replicate_not_configured",
        "Replicate refused our credentials or account",
    ),
}


class ProviderError(Exception):
    """A provider call failed; ``failure`` says how (``status`` None: no answer at all).
    ``permanent`` errors will not succeed when retried."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    @property
    def failure(self) -> Failure:
        if self.status is None or self.status >= 500:
            return Failure.UNAVAILABLE
        return FAILURE_BY_STATUS.get(self.status, Failure.INVALID)

    @property
    def permanent(self) -> bool:
        return self.failure not in (Failure.UNAVAILABLE, Failure.RATE_LIMITED)

    @property
    def gone(self) -> bool:
        """The object the call named is no more at Replicate (not merely unreachable)."""
        return self.failure is Failure.GONE

    def domain_error(self) -> DomainError:
        """This failure for a caller waiting on it (Replicate's detail stays out: it may
        quote the input)."""
        kind, code, message = _DOMAIN_ERRORS[self.failure]
        return kind(message, code=code)


class InvalidWebhook(Exception):
    """A delivery whose signature, timestamp or body does not check out."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def wrap(exc: Exception) -> ProviderError:
    if isinstance(exc, ReplicateError):
        return ProviderError(exc.detail or exc.title or "replicate error", status=exc.status)
    return ProviderError(f"replicate unreachable: {exc.__class__.__name__}")
