"""The gateway's live-event feed on the real RabbitMQ: its own queue, what it keeps, what it skips."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aio_pika
import pytest
from aiormq.exceptions import ChannelLockedResource, ChannelNotFoundEntity

from tests.support.infra import Infra
from tests.support.waiting import eventually
from visiona.gateway.live.feed import EventFeed, EventHub, LiveEvent, Subscription
from visiona.kit.events import (
    CreditsChangedV1,
    Event,
    ModelReadyV1,
    PlanChangedV1,
    PromptEnhancementCreatedV1,
)


class Broker:
    def __init__(self, amqp_url: str, exchange: str, prefix: str) -> None:
        self.amqp_url = amqp_url
        self.exchange = exchange
        self.prefix = prefix

    async def publish(self, *events: Event) -> None:
        await self.publish_raw(*((e.routing_key, e.model_dump_json().encode()) for e in events))

    async def publish_raw(self, *messages: tuple[str, bytes]) -> None:
        # Not mandatory: keys nobody binds are simply dropped by the exchange.
        connection = await aio_pika.connect(self.amqp_url)
        async with connection:
            channel = await connection.channel()
            exchange = await channel.declare_exchange(
                self.exchange, aio_pika.ExchangeType.TOPIC, durable=True
            )
            for key, body in messages:
                await exchange.publish(aio_pika.Message(body), routing_key=key)

    async def queue_exists(self, name: str) -> bool:
        connection = await aio_pika.connect(self.amqp_url)
        async with connection:
            channel = await connection.channel()
            try:
                await channel.declare_queue(name, passive=True)
            except ChannelLockedResource:
                return True  # exclusive to the connection that declared it
            except ChannelNotFoundEntity:
                return False
            raise AssertionError(f"{name} is not exclusive")


@pytest.fixture
async def broker(infra: Infra) -> AsyncIterator[Broker]:
    tag = uuid.uuid4().hex[:8]
    broker = Broker(infra.amqp_url, f"visiona.events.g{tag}", f"g{tag}.")
    try:
        yield broker
    finally:
        connection = await aio_pika.connect(infra.amqp_url)
        async with connection:
            channel = await connection.channel()
            await channel.exchange_delete(broker.exchange)


@asynccontextmanager
async def started(broker: Broker, hub: EventHub, **options: Any) -> AsyncIterator[EventFeed]:
    """A feed on ``broker``'s exchange, its queue bound; stopped afterwards."""
    feed = EventFeed(
        hub,
        amqp_url=broker.amqp_url,
        exchange=broker.exchange,
        queue_prefix=broker.prefix,
        **options,
    )
    await feed.start()
    try:
        await eventually("the feed's queue", lambda: broker.queue_exists(feed.queue_name))
        yield feed
    finally:
        await feed.stop()


@pytest.fixture
async def feed(broker: Broker) -> AsyncIterator[EventFeed]:
    async with started(broker, EventHub(replay_size=10, client_queue=10), reconnect_s=0.2) as fed:
        yield fed


async def take(stream: Subscription, n: int, timeout_s: float = 5.0) -> list[LiveEvent]:
    out = []
    for _ in range(n):
        event = await asyncio.wait_for(stream.next(), timeout_s)
        assert event is not None
        out.append(event)
    return out


def ready(user: str) -> ModelReadyV1:
    return ModelReadyV1(user_id=user, model_id=uuid.uuid4(), training_id=uuid.uuid4(), version="1")


def credits(user: str, balance: int) -> CreditsChangedV1:
    return CreditsChangedV1(user_id=user, balance=balance, held=0, available=balance, cause="test")


async def test_the_feed_queue_is_the_instances_own_and_goes_with_it(broker: Broker) -> None:
    feeds = [
        EventFeed(EventHub(), amqp_url=broker.amqp_url, exchange=broker.exchange, queue_prefix=p)
        for p in (broker.prefix, broker.prefix)
    ]
    for feed in feeds:
        await feed.start()
    try:
        names = [feed.queue_name for feed in feeds]
        assert names[0] != names[1] and all(n.startswith(f"{broker.prefix}gateway.") for n in names)
        for name in names:
            await eventually(name, lambda n=name: broker.queue_exists(n))  # type: ignore[misc]
        # Both instances see every event: each has its own queue, not a shared group.
        streams = [feed.hub.subscribe("user_a") for feed in feeds]
        event = credits("user_a", 5)
        await broker.publish(event)
        for stream in streams:
            (got,) = await take(stream, 1)
            assert got.event_id == str(event.event_id)
    finally:
        for feed in feeds:
            await feed.stop()
    for name in names:
        assert not await broker.queue_exists(name)


async def test_the_feed_passes_on_user_events_and_skips_the_rest(
    broker: Broker, feed: EventFeed
) -> None:
    alice, bob = feed.hub.subscribe("user_alice"), feed.hub.subscribe("user_bob")
    for_alice = [credits("user_alice", 10), ready("user_alice")]
    for_bob = [PlanChangedV1(user_id="user_bob", plan_id="creator", status="active")]
    enhancement = PromptEnhancementCreatedV1(
        user_id="user_alice",
        enhancement_id=uuid.uuid4(),
        model="m",
        input_tokens=1,
        output_tokens=1,
    )
    await broker.publish(for_alice[0], enhancement, for_bob[0])
    # Followed keys that cannot be decoded, or carry no user, are skipped; so is a repeat.
    await broker.publish_raw(
        ("training.thing.happened.v9", b'{"user_id": "user_alice"}'),
        ("generation.generation.failed.v1", b"not json"),
        (for_alice[0].routing_key, for_alice[0].model_dump_json().encode()),
    )
    await broker.publish(for_alice[1])

    got = await take(alice, 2)
    assert [(e.routing_key, e.event_id) for e in got] == [
        (e.routing_key, str(e.event_id)) for e in for_alice
    ]
    assert CreditsChangedV1.model_validate_json(got[0].data) == for_alice[0]
    assert [e.event_id for e in await take(bob, 1)] == [str(for_bob[0].event_id)]
    # Nothing else arrives for either of them.
    await broker.publish(credits("user_bob", 1))
    (last,) = await take(bob, 1)
    assert last.routing_key == "billing.credits.changed.v1"
    assert alice._queue.empty()
    assert feed.connected


async def test_the_feed_acks_on_arrival(broker: Broker) -> None:
    # With a prefetch of 5, a feed that did not ack would stop after five deliveries.
    async with started(broker, EventHub(client_queue=100), prefetch=5) as feed:
        stream = feed.hub.subscribe("user_a")
        await broker.publish(*(credits("user_a", n) for n in range(50)))
        got = await take(stream, 50)
    assert [CreditsChangedV1.model_validate_json(e.data).balance for e in got] == list(range(50))


async def test_the_feed_waits_for_a_broker_that_is_not_there(broker: Broker) -> None:
    # A port that takes connections and drops them at once: no broker answers there, and
    # each of the feed's attempts is counted.
    attempts = 0

    async def hang_up(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal attempts
        attempts += 1
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    feed = EventFeed(
        EventHub(),
        amqp_url=f"amqp://guest:guest@127.0.0.1:{port}/",
        exchange=broker.exchange,
        reconnect_s=0.1,
    )
    try:
        await asyncio.wait_for(feed.start(), 1)
        stream = feed.hub.subscribe("user_a")
        # It went on trying, and its subscribers stayed open meanwhile.
        await eventually("a third attempt to connect", lambda: attempts >= 3)
        assert not feed.connected
        assert stream._queue.empty() and not stream.closed
    finally:
        await asyncio.wait_for(feed.stop(), 5)
        server.close()
    assert stream.closed


def test_the_feed_takes_its_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from visiona.gateway.config import GatewaySettings

    for key, value in {
        "GATEWAY_AMQP_URL": "amqp://u:p@broker:5673/v",
        "GATEWAY_EVENTS_EXCHANGE": "x.events",
        "GATEWAY_QUEUE_PREFIX": "t1.",
        "GATEWAY_SSE_REPLAY_SIZE": "7",
        "GATEWAY_SSE_REPLAY_MAX_AGE_S": "60",
        "GATEWAY_SSE_CLIENT_QUEUE": "9",
        "GATEWAY_SSE_HEARTBEAT_S": "1.5",
    }.items():
        monkeypatch.setenv(key, value)
    settings = GatewaySettings()
    feed = EventFeed.from_settings(settings)
    assert (feed.amqp_url, feed.exchange) == ("amqp://u:p@broker:5673/v", "x.events")
    assert feed.queue_name.startswith("t1.gateway.live.")
    assert (feed.hub.replay_size, feed.hub.replay_max_age_s, feed.hub.client_queue) == (7, 60, 9)
    assert settings.sse_heartbeat_s == 1.5
