"""How the kit's gRPC server answers a handler's errors: an unreachable dependency is
UNAVAILABLE (``dependency_unavailable``) and a warning, a bug INTERNAL with its trace logged.
An in-process server on a local port, with the kit's interceptor; no other server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import grpc
import psycopg
import pytest
import sqlalchemy.exc as sa_exc
from structlog.testing import capture_logs

from visiona.kit.errors import InvalidArgument, limit_text, size_text
from visiona.kit.grpcserver import (
    ERROR_CODE_KEY,
    ERROR_MAX_BYTES_KEY,
    INTERNAL_TOKEN_KEY,
    create_server,
)
from visiona.kit.internal_token import MIN_SECRET_BYTES, Minter, Verifier

SECRET = "s" * MIN_SECRET_BYTES
METHOD = "/visiona.test.v1.Faulty/Call"


def refused() -> BaseException:
    try:
        psycopg.connect("postgresql://nobody@127.0.0.1:1/none", connect_timeout=5)
    except psycopg.OperationalError as exc:
        return sa_exc.OperationalError("SELECT 1", None, exc)
    raise AssertionError("connected to a closed port")


class Faulty:
    """Raises whatever the test put in ``error``."""

    def __init__(self) -> None:
        self.error: Callable[[], BaseException] = lambda: KeyError("bug")

    async def call(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        raise self.error()


@pytest.fixture
async def served() -> AsyncIterator[tuple[Faulty, grpc.aio.UnaryUnaryMultiCallable]]:
    faulty = Faulty()
    server, _ = create_server(verifier=Verifier(SECRET))
    handler = grpc.method_handlers_generic_handler(
        "visiona.test.v1.Faulty", {"Call": grpc.unary_unary_rpc_method_handler(faulty.call)}
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield faulty, channel.unary_unary(METHOD)
    finally:
        await channel.close()
        await server.stop(None)


async def answer(call: grpc.aio.UnaryUnaryMultiCallable) -> grpc.aio.AioRpcError:
    token = Minter(SECRET, issuer="gateway").token("user_a")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call(b"", metadata=((INTERNAL_TOKEN_KEY, token),), timeout=10)
    return info.value


def error_code(error: grpc.aio.AioRpcError) -> str | None:
    return dict(error.trailing_metadata() or ()).get(ERROR_CODE_KEY)  # type: ignore[return-value]


async def test_an_unreachable_database_is_unavailable_and_a_warning(
    served: tuple[Faulty, grpc.aio.UnaryUnaryMultiCallable],
) -> None:
    faulty, call = served
    faulty.error = refused
    with capture_logs() as logs:
        error = await answer(call)
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert error_code(error) == "dependency_unavailable"
    assert "try again" in (error.details() or "")
    assert "127.0.0.1" not in (error.details() or "")  # nothing of the connection leaks
    [entry] = [e for e in logs if e["event"] == "rpc.dependency_unavailable"]
    assert (entry["log_level"], entry["dependency"]) == ("warning", "postgres")
    assert "exc_info" not in entry
    assert not [e for e in logs if e["event"] == "rpc.failed"]


async def test_a_bug_is_still_internal_with_its_trace(
    served: tuple[Faulty, grpc.aio.UnaryUnaryMultiCallable],
) -> None:
    _, call = served
    with capture_logs() as logs:
        error = await answer(call)
    assert error.code() == grpc.StatusCode.INTERNAL
    assert error_code(error) == "internal_error"
    assert error.details() == "internal error"
    [entry] = [e for e in logs if e["event"] == "rpc.failed"]
    assert entry["log_level"] == "error" and entry["exc_info"]


async def test_a_size_error_names_its_limit_in_the_trailing_metadata(
    served: tuple[Faulty, grpc.aio.UnaryUnaryMultiCallable],
) -> None:
    faulty, call = served
    faulty.error = lambda: InvalidArgument("too big", code="photo_too_large", max_bytes=20971520)
    error = await answer(call)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    trailing = dict(error.trailing_metadata() or ())
    assert trailing[ERROR_CODE_KEY] == "photo_too_large"
    assert trailing[ERROR_MAX_BYTES_KEY] == "20971520"


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (1, "1 byte"),
        (512, "512 bytes"),
        (1024, "1 KiB"),
        (1536, "1.5 KiB"),
        (1024 * 1024, "1 MiB"),
        (20 * 1024 * 1024, "20 MiB"),
        (26528972, "25.3 MiB"),
        (3 * 1024**3, "3 GiB"),
        (5 * 1024**5, "5120 TiB"),
    ],
)
def test_sizes_read_as_people_say_them(n: int, text: str) -> None:
    assert size_text(n) == text


def test_a_limit_is_said_in_both_forms() -> None:
    assert limit_text(20 * 1024 * 1024) == "20 MiB (20971520 bytes)"
