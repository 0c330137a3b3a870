"""Errors carry their status: a domain error has a stable code and a kind.

The kit maps the kind to a gRPC status (kit.grpc) and the gateway maps the gRPC status to an
HTTP problem+json response; nothing else translates errors.
"""

from __future__ import annotations

import enum


class ErrorKind(enum.Enum):
    INVALID_ARGUMENT = "invalid_argument"
    UNAUTHENTICATED = "unauthenticated"
    PERMISSION_DENIED = "permission_denied"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    FAILED_PRECONDITION = "failed_precondition"
    RESOURCE_EXHAUSTED = "resource_exhausted"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"


class DomainError(Exception):
    """A failure the caller can act on; ``code`` is stable and documented, ``message`` is human.

    Messages must never contain secrets, tokens or personal data: they reach API clients.
    An error about a size limit names it in ``max_bytes`` too, which the gateway hands out as
    the problem's ``max_bytes`` and ``max_size`` (:func:`size_text`).
    """

    kind: ErrorKind = ErrorKind.INTERNAL
    code: str = "internal_error"

    def __init__(
        self, message: str, *, code: str | None = None, max_bytes: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.max_bytes = max_bytes
        if code is not None:
            self.code = code


class InvalidArgument(DomainError):
    kind = ErrorKind.INVALID_ARGUMENT
    code = "invalid_argument"


class Unauthenticated(DomainError):
    kind = ErrorKind.UNAUTHENTICATED
    code = "unauthenticated"


class PermissionDenied(DomainError):
    kind = ErrorKind.PERMISSION_DENIED
    code = "permission_denied"


class NotFound(DomainError):
    kind = ErrorKind.NOT_FOUND
    code = "not_found"


class Conflict(DomainError):
    kind = ErrorKind.CONFLICT
    code = "conflict"


class FailedPrecondition(DomainError):
    kind = ErrorKind.FAILED_PRECONDITION
    code = "failed_precondition"


class ResourceExhausted(DomainError):
    kind = ErrorKind.RESOURCE_EXHAUSTED
    code = "resource_exhausted"


class Unavailable(DomainError):
    kind = ErrorKind.UNAVAILABLE
    code = "unavailable"


_UNITS = ("KiB", "MiB", "GiB", "TiB")


def size_text(n: int) -> str:
    """A byte count as a person reads it: ``20 MiB``, ``1.5 KiB``, ``512 bytes``."""
    if n < 1024:
        return f"{n} byte" if n == 1 else f"{n} bytes"
    value = float(n)
    for unit in _UNITS:
        value /= 1024
        if value < 1024 or unit == _UNITS[-1]:
            return f"{value:.1f}".removesuffix(".0") + f" {unit}"
    raise AssertionError("unreachable")


def limit_text(max_bytes: int) -> str:
    """A size limit in both forms, for messages: ``20 MiB (20971520 bytes)``."""
    return f"{size_text(max_bytes)} ({max_bytes} bytes)"


class NotYet(Exception):
    """A background step cannot go on yet, through nobody's fault (another worker's attempt at
    it is in flight): the step is tried again ``retry_after_s`` later, and the try is not
    counted among its attempts (visiona.kit.jobs)."""

    def __init__(self, message: str, retry_after_s: float = 2.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
