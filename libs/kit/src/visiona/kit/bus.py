"""aio-pika event bus: one durable topic exchange, one quorum queue per consumer group.

Each consumer group's queue has a delivery limit; a message that fails that many times, or
that cannot be decoded, goes to the group's dead-letter queue (``<queue>.dlq``), where it stays
visible. The connection is robust: after a broker restart or a closed connection aio-pika
re-opens channels and re-declares exchanges, queues, bindings and consumers.

That covers what was declared once. The first :meth:`EventBus.connect` and each
:meth:`EventBus.subscribe` either succeed whole or raise and leave nothing open behind them
(a broker that accepts the connection and drops it mid-declaration included), so the caller
can simply try again: :class:`visiona.kit.runtime.BrokerLink` does, for as long as it takes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustChannel,
    AbstractRobustConnection,
    AbstractRobustExchange,
    ConsumerTag,
)

from visiona.kit.events import Event
from visiona.kit.logging import get_logger
from visiona.kit.settings import ServiceSettings

log = get_logger(__name__)

MessageHandler = Callable[[AbstractIncomingMessage], Awaitable[None]]


class Subscription:
    """A consumer on a group's queue; ``cancel`` stops new deliveries."""

    def __init__(self, queue: AbstractQueue, tag: ConsumerTag) -> None:
        self.queue = queue
        self.tag = tag

    async def cancel(self) -> None:
        await self.queue.cancel(self.tag)


class EventBus:
    def __init__(
        self,
        url: str,
        exchange: str = "visiona.events",
        *,
        queue_prefix: str = "",
        prefetch: int = 32,
        delivery_limit: int = 5,
        connection_name: str = "visiona",
    ) -> None:
        self.url = url
        self.exchange_name = exchange
        self.dlx_name = f"{exchange}.dlx"
        self.queue_prefix = queue_prefix
        self.prefetch = prefetch
        self.delivery_limit = delivery_limit
        self.connection_name = connection_name
        self._connection: AbstractRobustConnection | None = None
        self._publish_channel: AbstractRobustChannel | None = None
        self._exchange: AbstractRobustExchange | None = None
        self._consume_channels: list[AbstractRobustChannel] = []

    @classmethod
    def from_settings(cls, settings: ServiceSettings, *, connection_name: str = "") -> EventBus:
        """The bus a process's settings name (the connection named after the service)."""
        return cls(
            settings.amqp_url.get_secret_value(),
            settings.events_exchange,
            queue_prefix=settings.queue_prefix,
            prefetch=settings.consumer_prefetch,
            delivery_limit=settings.delivery_limit,
            connection_name=connection_name or settings.service_name,
        )

    async def connect(self) -> None:
        """Connect and declare the exchanges. Raises when the broker cannot be reached or
        fails before the end; then nothing is left open (no robust connection reconnecting
        behind the caller's back) and ``connected`` stays false. Once connected, the robust
        connection does the rest: calling again changes nothing."""
        if self._connection is not None:
            return
        connection = await aio_pika.connect_robust(
            self.url, client_properties={"connection_name": self.connection_name}
        )
        try:
            # Confirms make publish() wait for the broker; returns make an unroutable
            # mandatory message an error instead of a silent drop.
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            exchange = await channel.declare_exchange(
                self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
            )
            await channel.declare_exchange(
                self.dlx_name, aio_pika.ExchangeType.DIRECT, durable=True
            )
        except BaseException:
            await _close_quietly(connection)
            raise
        self._connection, self._publish_channel, self._exchange = connection, channel, exchange

    @property
    def connected(self) -> bool:
        return (
            self._connection is not None
            and not self._connection.is_closed
            and bool(self._connection.connected.is_set())
        )

    def queue_name(self, consumer: str) -> str:
        return f"{self.queue_prefix}{consumer}"

    async def publish(
        self,
        routing_key: str,
        body: bytes,
        *,
        message_id: str,
        headers: dict[str, Any] | None = None,
        timeout: float = 10.0,
    ) -> None:
        """Publish persistently and wait for the broker's confirm.

        Raises when the broker nacks, returns the message as unroutable, or does not answer.
        """
        if self._exchange is None:
            raise RuntimeError("EventBus.connect() was not called")
        message = aio_pika.Message(
            body,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=message_id,
            type=routing_key,
            headers=headers or {},
        )
        await self._exchange.publish(message, routing_key, mandatory=True, timeout=timeout)

    async def publish_event(self, event: Event, headers: dict[str, Any] | None = None) -> None:
        await self.publish(
            event.routing_key,
            event.model_dump_json().encode(),
            message_id=str(event.event_id),
            headers=headers,
        )

    async def declare_group(self, consumer: str, routing_keys: Sequence[str]) -> AbstractQueue:
        """Declare a consumer group's quorum queue, its dead-letter queue and bindings."""
        queue, _ = await self._group(consumer, routing_keys, None)
        return queue

    async def subscribe(
        self, consumer: str, routing_keys: Sequence[str], handler: MessageHandler
    ) -> Subscription:
        """Declare the group and consume from its queue."""
        queue, tag = await self._group(consumer, routing_keys, handler)
        assert tag is not None
        return Subscription(queue, tag)

    async def _group(
        self, consumer: str, routing_keys: Sequence[str], handler: MessageHandler | None
    ) -> tuple[AbstractQueue, ConsumerTag | None]:
        """The group declared (and consumed, given a handler) on a channel of its own: all
        of it, or, raising, nothing (the channel closed again)."""
        if self._connection is None:
            raise RuntimeError("EventBus.connect() was not called")
        channel = await self._connection.channel()
        try:
            queue = await self._declare_group_on(channel, consumer, routing_keys)
            tag = None if handler is None else await queue.consume(handler)
        except BaseException:
            await _close_quietly(channel)
            raise
        self._consume_channels.append(channel)
        return queue, tag

    async def _declare_group_on(
        self, channel: AbstractRobustChannel, consumer: str, routing_keys: Sequence[str]
    ) -> AbstractQueue:
        await channel.set_qos(prefetch_count=self.prefetch)
        name = self.queue_name(consumer)
        dlq = await channel.declare_queue(
            f"{name}.dlq", durable=True, arguments={"x-queue-type": "quorum"}
        )
        await dlq.bind(self.dlx_name, routing_key=name)
        queue = await channel.declare_queue(
            name,
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-delivery-limit": self.delivery_limit,
                "x-dead-letter-exchange": self.dlx_name,
                "x-dead-letter-routing-key": name,
                # at-least-once dead-lettering: the broker keeps the message until the DLQ
                # confirms it (needs reject-publish overflow).
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            },
        )
        for key in routing_keys:
            await queue.bind(self.exchange_name, routing_key=key)
        return queue

    async def queue_counts(self, consumer: str) -> tuple[int, int]:
        """(messages ready, consumers) of a group's queue, from a passive declare."""
        return await self._counts(self.queue_name(consumer))

    async def dead_letter_count(self, consumer: str) -> int:
        return (await self._counts(f"{self.queue_name(consumer)}.dlq"))[0]

    async def _counts(self, name: str) -> tuple[int, int]:
        if self._connection is None:
            raise RuntimeError("EventBus.connect() was not called")
        channel = await self._connection.channel()
        try:
            queue = await channel.declare_queue(name, passive=True)
            result = queue.declaration_result
            return int(result.message_count or 0), int(result.consumer_count or 0)
        finally:
            await channel.close()

    async def close(self) -> None:
        for channel in self._consume_channels:
            if not channel.is_closed:
                await channel.close()
        self._consume_channels.clear()
        if self._connection is not None:
            await self._connection.close()
            self._connection = None


async def _close_quietly(closable: AbstractChannel | AbstractRobustConnection) -> None:
    """Close what a failed attempt opened; it may already be broken, so errors are moot."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(closable.close(), 5)


async def wait_until(
    predicate: Callable[[], Awaitable[bool]], timeout: float, step: float = 0.05
) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` passes (for start-up and tests)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(step)
    return await predicate()
