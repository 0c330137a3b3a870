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
    """

    kind: ErrorKind = ErrorKind.INTERNAL
    code: str = "internal_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
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
