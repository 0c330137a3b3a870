"""Starting while RabbitMQ is away or flapping: a service starts and stays up whatever the
broker does, its readiness says it is not ready until the bus is connected and every consumer
consumes, and the gateway's /readyz names the broker. The broker is reached through a proxy
the test controls (tests/support/broker_proxy.py); the shared broker is never touched."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.broker_proxy import EXCHANGE_DECLARE, QUEUE_DECLARE, BrokerProxy
from tests.support.stack import RunningStack, extra_gateway
from tests.support.waiting import eventually
from visiona.kit.bus import EventBus

SERVICE = "prompts"
# Its one consumer group (services/prompts/src/visiona/prompts/consumers.py).
CONSUMER = "prompts.account"
# A restarted service's own progress: at a load of 30 its start alone takes tens of seconds
# (the bound is only how long a stuck test waits to fail).
RESTART_WAIT_S = 120
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@contextlib.contextmanager
def restarted_with(stack: RunningStack, service: str, **env: str) -> Iterator[None]:
    """The stack's ``service`` run again with ``env`` on top of its own; as it was after."""
    argv, own_env = stack.processes.specs[service]
    stack.processes.stop(service)
    stack.processes.specs[service] = (argv, own_env | env)
    try:
        stack.processes.start(service)
        yield
    finally:
        stack.processes.stop(service)
        stack.processes.specs[service] = (argv, own_env)
        stack.processes.start(service)
        stack.processes.wait_ready()


async def health(stack: RunningStack, name: str) -> int | None:
    """The service's answer for ``name`` ("" is readiness), None when it does not answer."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.cfg.ports[SERVICE]}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=2)
        except grpc.aio.AioRpcError:
            return None
        return int(reply.status)


def exited(stack: RunningStack) -> bool:
    return stack.processes.procs[SERVICE].poll() is not None


async def alive_but_not_ready(stack: RunningStack) -> bool:
    return not exited(stack) and (
        await health(stack, "liveness") == SERVING and await health(stack, "") == NOT_SERVING
    )


async def consumers_on(stack: RunningStack, consumer: str) -> int:
    """How many consumers the broker counts on the group's queue (asked directly)."""
    bus = EventBus(stack.cfg.amqp_url, stack.cfg.exchange, queue_prefix=stack.cfg.queue_prefix)
    await bus.connect()
    try:
        return (await bus.queue_counts(consumer))[1]
    finally:
        await bus.close()


@contextlib.asynccontextmanager
async def service_behind(stack: RunningStack, proxy: BrokerProxy) -> AsyncIterator[None]:
    """The service restarted to reach the broker through ``proxy``; as it was after."""
    restart = restarted_with(stack, SERVICE, PROMPTS_AMQP_URL=proxy.url)
    # In a thread: the proxy needs this event loop while processes stop and start.
    await asyncio.to_thread(restart.__enter__)
    try:
        yield
    finally:
        await proxy.down()
        await asyncio.to_thread(restart.__exit__, None, None, None)


async def serves_and_consumes_once_the_broker_passes(
    stack: RunningStack, proxy: BrokerProxy
) -> None:
    await proxy.up()
    await eventually(
        "readiness once the broker passes traffic",
        lambda: _serving(stack),
        timeout_s=RESTART_WAIT_S,
    )
    assert await consumers_on(stack, CONSUMER) == 1
    ready = await asyncio.to_thread(httpx.get, f"{stack.url}/readyz", timeout=10)
    assert ready.json()["dependencies"][SERVICE]["ready"] is True, ready.text


@pytest.mark.disruptive
async def test_a_service_started_while_the_broker_refuses_or_drops_connections_stays_up(
    stack: RunningStack,
) -> None:
    proxy = BrokerProxy(stack.cfg.amqp_url)  # refusing connections until up()
    logged_before = len(stack.processes.log(SERVICE))
    async with service_behind(stack, proxy):
        await eventually(
            "the service to answer, alive and not ready, with the broker refusing",
            lambda: alive_but_not_ready(stack),
            timeout_s=RESTART_WAIT_S,
        )
        await eventually(
            "readiness to say what is missing",
            lambda: '"missing": ["rabbitmq"]' in stack.processes.log(SERVICE)[logged_before:],
            timeout_s=RESTART_WAIT_S,
        )
        # Connections accepted, then cut as the bus declares its exchanges.
        await proxy.up(drop_at=EXCHANGE_DECLARE)
        await eventually(
            "two connections cut mid-connect (or the service gone)",
            lambda: proxy.dropped >= 2 or exited(stack),
            timeout_s=RESTART_WAIT_S,
        )
        assert await alive_but_not_ready(stack), stack.processes.log(SERVICE)[-3000:]

        await serves_and_consumes_once_the_broker_passes(stack, proxy)


@pytest.mark.disruptive
async def test_a_service_whose_consumers_cannot_declare_their_queues_stays_up(
    stack: RunningStack,
) -> None:
    # The broker takes the connection and the exchanges, then drops it at each queue.
    proxy = BrokerProxy(stack.cfg.amqp_url)
    await proxy.up(drop_at=QUEUE_DECLARE)
    async with service_behind(stack, proxy):
        await eventually(
            "two connections cut mid-declaration (or the service gone)",
            lambda: proxy.dropped >= 2 or exited(stack),
            timeout_s=RESTART_WAIT_S,
        )
        assert not exited(stack), stack.processes.log(SERVICE)[-3000:]
        await eventually(
            "the service to answer, alive and not ready, its consumer not consuming",
            lambda: alive_but_not_ready(stack),
            timeout_s=RESTART_WAIT_S,
        )
        assert await consumers_on(stack, CONSUMER) == 0

        await serves_and_consumes_once_the_broker_passes(stack, proxy)


async def _serving(stack: RunningStack) -> bool:
    return await health(stack, "") == SERVING


async def test_readyz_names_the_broker_and_is_ready_only_with_it(stack: RunningStack) -> None:
    proxy = BrokerProxy(stack.cfg.amqp_url)
    gateway = extra_gateway(stack, GATEWAY_AMQP_URL=proxy.url, GATEWAY_AMQP_RECONNECT_S="0.3")
    # In a thread: the proxy needs this event loop while the gateway comes up.
    url = await asyncio.to_thread(gateway.__enter__)
    try:
        away = await asyncio.to_thread(httpx.get, f"{url}/readyz", timeout=10)
        assert away.status_code == 503, away.text
        dependencies = away.json()["dependencies"]
        assert dependencies["broker"]["ready"] is False
        assert "rabbitmq" in dependencies["broker"]["detail"]
        assert all(d["ready"] for name, d in dependencies.items() if name != "broker")

        await proxy.up()
        back = await eventually(
            "readiness once the broker is reachable",
            lambda: _ready(url),
            timeout_s=60,
        )
        assert back.json()["dependencies"]["broker"]["ready"] is True
    finally:
        await proxy.down()
        await asyncio.to_thread(gateway.__exit__, None, None, None)


async def _ready(url: str) -> httpx.Response | None:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"{url}/readyz")
    return response if response.status_code == 200 else None
