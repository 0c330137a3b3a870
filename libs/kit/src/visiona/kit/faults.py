"""Telling an unavailable dependency from a bug.

:func:`dependency_unavailable` is true for an error that means PostgreSQL, RabbitMQ, S3 or
another service could not be reached, or was restarting, or dropped the connection: retrying
later can succeed and nothing is wrong with the request or the code. Callers act on it the
same way everywhere: the gRPC server answers UNAVAILABLE (``dependency_unavailable``), the
gateway 503 with ``Retry-After``, a consumer backs off instead of dead-lettering.

Deliberately not included, although some are transient too: serialization failures,
deadlocks, lock timeouts and cancelled statements (a conflict or a limit of the work itself,
not a dependency that went away), programming misuse of a driver (psycopg's InterfaceError,
a closed cursor), broker refusals that a retry cannot change (a queue declared with other
arguments, an entity that does not exist, access refused), unroutable or nacked publishes,
and local file errors.
"""

from __future__ import annotations

import errno
import socket

import aiormq.exceptions as amqp
import grpc
import psycopg
import sqlalchemy.exc as sa_exc
import urllib3.exceptions as http
from minio.error import S3Error, ServerError

__all__ = ["DEPENDENCY_ERROR_BASES", "dependency_unavailable", "unavailable_dependency"]

# Every error :func:`dependency_unavailable` accepts is an instance of one of these, or was
# raised ``from`` one (for frameworks that dispatch on the class, like Starlette's handlers).
DEPENDENCY_ERROR_BASES: tuple[type[Exception], ...] = (
    sa_exc.SQLAlchemyError,
    psycopg.Error,
    OSError,
    amqp.AMQPError,
    amqp.ChannelInvalidStateError,
    http.HTTPError,
    S3Error,
    ServerError,
    grpc.RpcError,
    # A group is one only when all it holds is; then it holds no BaseException either.
    ExceptionGroup,
)

# SQLSTATEs of errors psycopg classes as OperationalError that are not an outage: transaction
# rollbacks (40: serialization failure, deadlock), lock_not_available, query_canceled.
_NOT_AN_OUTAGE_CLASSES = ("40",)
_NOT_AN_OUTAGE_STATES = frozenset({"55P03", "57014"})

# A socket that could not reach its peer, or lost it.
_NETWORK_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EPIPE,
        errno.ETIMEDOUT,
        errno.EHOSTUNREACH,
        errno.EHOSTDOWN,
        errno.ENETUNREACH,
        errno.ENETDOWN,
        errno.ENETRESET,
        errno.EADDRNOTAVAIL,
        errno.ENOTCONN,
        errno.ESHUTDOWN,
    }
)

# The broker closed the channel for what the client asked: a retry asks the same.
_AMQP_REFUSALS = (
    amqp.ChannelPreconditionFailed,
    amqp.ChannelNotFoundEntity,
    amqp.ChannelAccessRefused,
    amqp.DuplicateConsumerTag,
)

# S3 answers that mean "not now" (anything else is about the request).
_S3_BUSY_CODES = frozenset({"SlowDown", "ServiceUnavailable", "RequestTimeout", "InternalError"})
_HTTP_BUSY_STATUSES = frozenset({500, 502, 503, 504})

_MAX_DEPTH = 8


def dependency_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` means a dependency is unreachable or restarting, not a bug."""
    return unavailable_dependency(exc) is not None


def unavailable_dependency(exc: BaseException) -> str | None:
    """Which dependency ``exc`` says is unavailable (``postgres``, ``rabbitmq``, ``s3``,
    ``grpc`` or ``network``), or None when it says something else (see the module)."""
    return _classify(exc, 0)


def _classify(exc: BaseException, depth: int) -> str | None:
    if depth > _MAX_DEPTH:
        return None
    found = _own(exc, depth)
    if found is not None:
        return found
    # An explicit ``raise ... from`` keeps the reason: a wrapper of an outage is an outage.
    cause = exc.__cause__
    if cause is not None and cause is not exc and not isinstance(exc, sa_exc.DBAPIError):
        return _classify(cause, depth + 1)
    return None


def _own(exc: BaseException, depth: int) -> str | None:
    if isinstance(exc, BaseExceptionGroup):
        kinds = [_classify(e, depth + 1) for e in exc.exceptions]
        return kinds[0] if kinds and all(kinds) else None
    if isinstance(exc, sa_exc.SQLAlchemyError):
        return _sqlalchemy(exc, depth)
    if isinstance(exc, psycopg.Error):
        return _psycopg(exc)
    if isinstance(exc, amqp.ChannelInvalidStateError):
        return "rabbitmq"  # the channel or its connection is closed
    if isinstance(exc, amqp.AMQPError):
        return _amqp(exc)
    if isinstance(exc, S3Error):
        return "s3" if exc.code in _S3_BUSY_CODES else None
    if isinstance(exc, ServerError):
        return "s3" if exc.status_code in _HTTP_BUSY_STATUSES else None
    if isinstance(exc, http.HTTPError):
        return _urllib3(exc)
    if isinstance(exc, grpc.RpcError):
        code = getattr(exc, "code", None)
        return "grpc" if callable(code) and code() == grpc.StatusCode.UNAVAILABLE else None
    if isinstance(exc, OSError):
        return "network" if _socket_error(exc) else None
    return None


def _sqlalchemy(exc: sa_exc.SQLAlchemyError, depth: int) -> str | None:
    if isinstance(exc, sa_exc.TimeoutError | sa_exc.DisconnectionError):
        return "postgres"  # the pool had no connection to give, or found it dead
    if not isinstance(exc, sa_exc.DBAPIError):
        return None
    if exc.connection_invalidated:
        return "postgres"
    orig = exc.orig
    if isinstance(orig, BaseException):
        return _classify(orig, depth + 1)
    return "postgres" if isinstance(exc, sa_exc.OperationalError) else None


def _psycopg(exc: psycopg.Error) -> str | None:
    if not isinstance(exc, psycopg.OperationalError):
        return None
    state = exc.sqlstate or ""
    if state.startswith(_NOT_AN_OUTAGE_CLASSES) or state in _NOT_AN_OUTAGE_STATES:
        return None
    # Connection failures (no SQLSTATE), 08 connection exceptions, 53 insufficient
    # resources (too many connections), 57P0x shutdowns and "cannot connect now", 58 system.
    return "postgres"


def _amqp(exc: amqp.AMQPError) -> str | None:
    if isinstance(exc, _AMQP_REFUSALS):
        return None
    if isinstance(exc, amqp.AMQPConnectionError | amqp.ChannelClosed):
        return "rabbitmq"
    return None


def _urllib3(exc: http.HTTPError) -> str | None:
    # MinIO's pool retries connection errors, timeouts and 5xx answers; MaxRetryError is
    # what is left when they kept failing.
    busy = http.MaxRetryError | http.TimeoutError | http.ProtocolError | http.NewConnectionError
    return "s3" if isinstance(exc, busy) else None


def _socket_error(exc: OSError) -> bool:
    if isinstance(exc, ConnectionError | TimeoutError | socket.gaierror):
        return True
    return exc.errno in _NETWORK_ERRNOS
