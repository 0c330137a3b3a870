"""Which errors mean "a dependency is unavailable" (retry later) and which are bugs: real
exceptions, from real clients failing against a closed port where that is possible (no
server is needed for a refused connection), else instances of the real classes."""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable

import aio_pika
import aiormq.exceptions as amqp
import grpc
import psycopg
import psycopg.errors as pg
import pytest
import sqlalchemy as sa
import sqlalchemy.exc as sa_exc
import urllib3.exceptions as http
from minio.error import S3Error, ServerError
from sqlalchemy.ext.asyncio import create_async_engine

from visiona.kit.errors import Unavailable
from visiona.kit.faults import (
    DEPENDENCY_ERROR_BASES,
    dependency_unavailable,
    unavailable_dependency,
)

# Nothing listens on port 1: connecting is refused at once.
CLOSED = "127.0.0.1:1"


def raised(make: Callable[[], object]) -> BaseException:
    try:
        make()
    except BaseException as exc:
        return exc
    raise AssertionError("expected an error")


def wrapped(
    orig: BaseException, cls: type[sa_exc.DBAPIError] = sa_exc.OperationalError
) -> BaseException:
    """``orig`` as SQLAlchemy raises it from a statement."""
    return cls("SELECT 1", None, orig)  # type: ignore[arg-type]


def rpc_error(code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), "details")


def s3_error(code: str) -> S3Error:
    return S3Error(None, code, "message", "/bucket/key", "req-1", "host-1")  # type: ignore[arg-type]


def refused_socket() -> BaseException:
    return raised(lambda: socket.create_connection(("127.0.0.1", 1), timeout=5))


def refused_psycopg() -> BaseException:
    return raised(lambda: psycopg.connect(f"postgresql://nobody@{CLOSED}/none", connect_timeout=5))


UNAVAILABLE: dict[str, Callable[[], BaseException]] = {
    "postgres refused (psycopg)": refused_psycopg,
    "postgres refused (sqlalchemy)": lambda: wrapped(refused_psycopg()),
    "postgres shutting down": lambda: pg.AdminShutdown(
        "terminating connection due to administrator command"
    ),
    "postgres starting or stopping": lambda: pg.CannotConnectNow(
        "the database system is shutting down"
    ),
    "postgres crashed": lambda: wrapped(pg.CrashShutdown("server crash")),
    "postgres full": lambda: wrapped(pg.TooManyConnections("too many clients already")),
    "postgres connection lost": lambda: psycopg.OperationalError("the connection is lost"),
    "pool exhausted": lambda: sa_exc.TimeoutError("QueuePool limit of size 3 reached"),
    "connection invalidated": lambda: sa_exc.DBAPIError(
        "SELECT 1",
        None,
        psycopg.DatabaseError("server closed the connection unexpectedly"),  # type: ignore[arg-type]
        connection_invalidated=True,
    ),
    "pool found it dead": lambda: sa_exc.DisconnectionError("dead on checkout"),
    "broker connection closed": lambda: amqp.ConnectionClosed(
        320, "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'"
    ),
    "broker channel closed with its connection": lambda: amqp.ChannelClosed(504, "CHANNEL_ERROR"),
    "broker channel gone": lambda: amqp.ChannelInvalidStateError("No active transport in channel"),
    "exclusive queue still held by the old connection": lambda: amqp.ChannelLockedResource(
        405, "RESOURCE_LOCKED"
    ),
    "socket refused": refused_socket,
    "socket reset": lambda: ConnectionResetError(errno.ECONNRESET, "reset by peer"),
    "socket timeout": lambda: TimeoutError(),
    "host unreachable": lambda: OSError(errno.EHOSTUNREACH, "no route to host"),
    "name not resolved": lambda: socket.gaierror(socket.EAI_NONAME, "unknown"),
    "s3 refused": lambda: http.MaxRetryError(
        None,  # type: ignore[arg-type]
        "/bucket",
        http.NewConnectionError(None, "Failed to establish a new connection"),  # type: ignore[arg-type]
    ),
    "s3 connection dropped": lambda: http.ProtocolError("Connection aborted."),
    "s3 slow down": lambda: s3_error("SlowDown"),
    "s3 5xx without a body": lambda: ServerError("server failed", 503),
    "another service unavailable": lambda: rpc_error(grpc.StatusCode.UNAVAILABLE),
    "wrapped on purpose": lambda: _raised_from(RuntimeError("gave up"), refused_socket()),
    "every failure of a group": lambda: ExceptionGroup(
        "several", [refused_socket(), pg.AdminShutdown("bye")]
    ),
}

NOT_UNAVAILABLE: dict[str, Callable[[], BaseException]] = {
    "a bug": lambda: KeyError("missing"),
    "a domain error": lambda: Unavailable("llm down", code="llm_unavailable"),
    "unique violation": lambda: wrapped(pg.UniqueViolation("duplicate key"), sa_exc.IntegrityError),
    "bad sql": lambda: wrapped(pg.UndefinedTable("no such table"), sa_exc.ProgrammingError),
    "serialization failure": lambda: wrapped(pg.SerializationFailure("could not serialize")),
    "deadlock": lambda: wrapped(pg.DeadlockDetected("deadlock detected")),
    "lock not available": lambda: pg.LockNotAvailable("could not obtain lock"),
    "statement timeout": lambda: pg.QueryCanceled("canceling statement due to statement timeout"),
    "driver misuse": lambda: wrapped(
        psycopg.InterfaceError("the cursor is closed"), sa_exc.InterfaceError
    ),
    "orm misuse": lambda: sa_exc.InvalidRequestError("no such attribute"),
    "queue declared otherwise": lambda: amqp.ChannelPreconditionFailed(
        406, "PRECONDITION_FAILED - inequivalent arg 'x-queue-type'"
    ),
    "no such exchange": lambda: amqp.ChannelNotFoundEntity(404, "NOT_FOUND - no exchange"),
    "unroutable publish": lambda: amqp.DeliveryError(None, None),  # type: ignore[arg-type]
    "file missing": lambda: FileNotFoundError(errno.ENOENT, "no such file"),
    "s3 no such key": lambda: s3_error("NoSuchKey"),
    "s3 refused the request": lambda: ServerError("not implemented", 501),
    "another service's answer": lambda: rpc_error(grpc.StatusCode.NOT_FOUND),
    "a group with a bug in it": lambda: ExceptionGroup("several", [refused_socket(), KeyError()]),
    "a bug raised while handling an outage": lambda: _raised_during(
        ValueError("bug"), refused_socket()
    ),
}


def _raised_from(exc: BaseException, cause: BaseException) -> BaseException:
    try:
        raise exc from cause
    except BaseException as caught:
        return caught


def _raised_during(exc: BaseException, context: BaseException) -> BaseException:
    try:
        try:
            raise context
        except BaseException:
            raise exc  # noqa: B904 (the point: an implicit context, not a cause)
    except BaseException as caught:
        return caught


@pytest.mark.parametrize("make", UNAVAILABLE.values(), ids=UNAVAILABLE.keys())
def test_an_unreachable_or_restarting_dependency_is_unavailable(
    make: Callable[[], BaseException],
) -> None:
    exc = make()
    assert dependency_unavailable(exc)
    assert isinstance(exc, DEPENDENCY_ERROR_BASES) or isinstance(
        exc.__cause__, DEPENDENCY_ERROR_BASES
    )


@pytest.mark.parametrize("make", NOT_UNAVAILABLE.values(), ids=NOT_UNAVAILABLE.keys())
def test_bugs_conflicts_and_refusals_are_not(make: Callable[[], BaseException]) -> None:
    assert not dependency_unavailable(make())


async def test_what_sqlalchemy_raises_when_postgres_is_down_is_unavailable() -> None:
    engine = create_async_engine(f"postgresql+psycopg://nobody@{CLOSED}/none")
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
    except Exception as exc:
        assert isinstance(exc, sa_exc.OperationalError)
        assert unavailable_dependency(exc) == "postgres"
    else:
        raise AssertionError("connected to a closed port")
    finally:
        await engine.dispose()


async def test_what_aio_pika_raises_when_the_broker_is_down_is_unavailable() -> None:
    try:
        await aio_pika.connect(f"amqp://guest:guest@{CLOSED}/", timeout=5)
    except Exception as exc:
        assert unavailable_dependency(exc) in {"rabbitmq", "network"}
    else:
        raise AssertionError("connected to a closed port")


def test_each_dependency_is_named() -> None:
    assert unavailable_dependency(refused_psycopg()) == "postgres"
    assert unavailable_dependency(amqp.ConnectionClosed(320, "forced")) == "rabbitmq"
    assert unavailable_dependency(s3_error("SlowDown")) == "s3"
    assert unavailable_dependency(rpc_error(grpc.StatusCode.UNAVAILABLE)) == "grpc"
    assert unavailable_dependency(refused_socket()) == "network"
    assert unavailable_dependency(KeyError()) is None
