"""Calls spread over every instance of a service, and servers make clients reconnect.

Two live kit servers answer with their own name; a channel from the kit's factory to a target
naming both (the form ``LocalStack`` gives a stack with two instances of each service) must
reach both. gRPC's default policy, ``pick_first``, would send every call to one of them.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest

from visiona.kit.grpcserver import INTERNAL_TOKEN_KEY, create_server
from visiona.kit.internal_token import MIN_SECRET_BYTES, Minter, Verifier
from visiona.kit.metrics import grpcclient

SECRET = "b" * MIN_SECRET_BYTES
SERVICE = "visiona.test.v1.Balanced"
MINTER = Minter(SECRET, issuer="test")


def token() -> tuple[tuple[str, str], ...]:
    """A fresh internal token: minted at import, it would expire before a long session's run
    reaches these tests."""
    return ((INTERNAL_TOKEN_KEY, MINTER.token("user_1")),)


async def _server(
    answer: Callable[[bytes, grpc.aio.ServicerContext], Any], **options: float
) -> tuple[grpc.aio.Server, int]:
    server, _ = create_server(verifier=Verifier(SECRET), **options)  # type: ignore[arg-type]
    handler = grpc.method_handlers_generic_handler(
        SERVICE, {"Who": grpc.unary_unary_rpc_method_handler(answer)}
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port


@pytest.fixture
async def two_servers() -> AsyncIterator[list[int]]:
    """Two servers answering ``Who`` with their own index."""
    started = []
    for index in range(2):

        async def who(_request: bytes, _context: Any, name: bytes = str(index).encode()) -> bytes:
            return name

        started.append(await _server(who))
    try:
        yield [port for _, port in started]
    finally:
        for server, _ in started:
            await server.stop(None)


async def test_a_channel_to_two_instances_spreads_unary_calls_over_both(
    two_servers: list[int],
) -> None:
    target = "ipv4:" + ",".join(f"127.0.0.1:{port}" for port in two_servers)
    async with grpcclient.insecure_channel(target) as channel:
        who = channel.unary_unary(f"/{SERVICE}/Who")
        answers = Counter([await who(b"", metadata=token()) for _ in range(20)])
    # Round robin takes the ready connections in turn: ten each, give or take the calls made
    # while the second connection was still being set up.
    assert set(answers) == {b"0", b"1"}, answers
    assert min(answers.values()) >= 5, answers


async def test_options_of_the_caller_keep_round_robin_unless_they_bring_a_service_config() -> None:
    options = grpcclient.channel_options([("grpc.enable_retries", 1)])
    assert ("grpc.enable_retries", 1) in options
    assert (grpcclient.SERVICE_CONFIG_OPTION, grpcclient.ROUND_ROBIN) in options
    own = (grpcclient.SERVICE_CONFIG_OPTION, '{"loadBalancingConfig": [{"pick_first": {}}]}')
    assert grpcclient.channel_options([own]) == [own]


async def test_the_server_closes_old_connections_so_clients_reconnect() -> None:
    """A client keeps one connection per address until the server ends it; with a short age
    it opens new ones (each new connection comes from a new local port), which is when a
    client behind a DNS name would resolve it again."""
    peers: list[str] = []

    async def peer(_request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        peers.append(context.peer())
        return b""

    server, port = await _server(peer, max_connection_age_s=0.2, max_connection_age_grace_s=1)
    try:
        async with grpcclient.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.unary_unary(f"/{SERVICE}/Who")
            while len(set(peers)) < 2 and len(peers) < 200:
                await call(b"", metadata=token(), wait_for_ready=True)
                await asyncio.sleep(0.05)
    finally:
        await server.stop(None)
    assert len(set(peers)) >= 2, peers
