"""Dead-lettered events of a consumer group: count them, look at them, send them back.

A message ends in ``<queue>.dlq`` when its handler kept failing (the delivery limit) or it
could not be decoded. Nothing takes it out by itself: once the cause is fixed, an operator
redrives it (``visiona-<service> dead-letters redrive``). A redriven message is the same
message (same ``message_id``, body and headers), published straight to the group's own queue
through the default exchange, so no other group sees it again and the group's inbox still
applies it at most once. Each is acked in the dead-letter queue only after the broker
confirmed the copy: a crash in between leaves a duplicate, never a loss.

An operator can also replay or discard one dead letter by its event id (:func:`settle_one`;
the gateway's ``/v1/admin/dead-letters``, through each service's ``OpsService``).

What is shown names the event (routing key, event id) and why it died, never its payload:
payloads carry user ids.

While any queue holds dead letters, a running service logs the warning ``bus.dead_letters``
with the counts per consumer group every ``dead_letter_check_interval_s``, and every count
(empty ones too) is the gauge ``visiona_dead_letter_messages{consumer}``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from visiona.kit import metrics
from visiona.kit.bus import EventBus
from visiona.kit.logging import get_logger

log = get_logger(__name__)

# Counters the broker keeps per delivery: a redriven message starts afresh.
_BROKER_COUNTS = ("x-delivery-count", "x-acquired-count")


@dataclass(frozen=True)
class DeadLetter:
    event_id: str | None
    routing_key: str
    # The broker's reason: "delivery_limit" (the handler kept failing), "rejected"
    # (undecodable), "expired", "maxlen".
    reason: str | None
    # Times it was dead-lettered (a redriven message that fails again counts twice).
    deaths: int
    died_at: datetime | None


def dead_letter_queue(bus: EventBus, consumer: str) -> str:
    return f"{bus.queue_name(consumer)}.dlq"


def _deaths(message: AbstractIncomingMessage) -> list[dict[str, Any]]:
    """The broker's ``x-death`` entries, newest cause first."""
    deaths = (message.headers or {}).get("x-death")
    if not isinstance(deaths, list):
        return []
    return [d for d in deaths if isinstance(d, dict)]


def _latest_death(message: AbstractIncomingMessage) -> dict[str, Any]:
    deaths = _deaths(message)
    return deaths[0] if deaths else {}


def _event_key(message: AbstractIncomingMessage) -> str:
    """The event's routing key: its ``type`` (our publishers set it), else the key it was
    first published with (a dead letter's own routing key is its queue's name)."""
    if message.type:
        return message.type
    deaths = _deaths(message)
    keys = deaths[-1].get("routing-keys") if deaths else None
    if isinstance(keys, list) and keys:
        return str(keys[0])
    return message.routing_key or ""


def describe(message: AbstractIncomingMessage) -> DeadLetter:
    death = _latest_death(message)
    deaths = sum(int(d.get("count", 1)) for d in _deaths(message))
    died_at = death.get("time")
    return DeadLetter(
        event_id=message.message_id,
        routing_key=_event_key(message),
        reason=str(death["reason"]) if "reason" in death else None,
        deaths=deaths,
        died_at=died_at if isinstance(died_at, datetime) else None,
    )


async def declared(bus: EventBus, consumer: str) -> bool:
    """Whether ``consumer``'s dead-letter queue exists (its service started the group)."""
    connection = await aio_pika.connect(bus.url)
    async with connection:
        channel = await connection.channel()
        try:
            await channel.declare_queue(dead_letter_queue(bus, consumer), passive=True)
        except aio_pika.exceptions.ChannelNotFoundEntity:
            return False
        return True


async def counts(bus: EventBus, consumers: Sequence[str]) -> dict[str, int]:
    """Dead letters per consumer group."""
    return {name: await bus.dead_letter_count(name) for name in consumers}


async def peek(bus: EventBus, consumer: str, limit: int = 50) -> list[DeadLetter]:
    """Up to ``limit`` dead letters of ``consumer``, oldest first, left where they are.

    AMQP has no browse: they are fetched unacked and given back (nacked, requeued) before
    the connection closes; the broker puts them back a moment later, so a count taken at
    once may not see them yet.
    """
    return (await inspect(bus, consumer, limit))[1]


async def inspect(bus: EventBus, consumer: str, limit: int) -> tuple[int, list[DeadLetter]]:
    """How many dead letters ``consumer`` has, and up to ``limit`` of them, oldest first, left
    where they are (see :func:`peek`); ``(0, [])`` when its queue was never declared."""
    connection = await aio_pika.connect(bus.url)
    async with connection:
        channel = await connection.channel()
        try:
            queue = await channel.declare_queue(dead_letter_queue(bus, consumer), passive=True)
        except aio_pika.exceptions.ChannelNotFoundEntity:
            return 0, []
        waiting = int(queue.declaration_result.message_count or 0)
        fetched: list[AbstractIncomingMessage] = []
        while len(fetched) < limit:
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                break
            fetched.append(message)
        for message in fetched:
            await message.nack(requeue=True)
        return waiting, [describe(message) for message in fetched]


async def redrive(bus: EventBus, consumer: str, limit: int | None = None) -> int:
    """Move ``consumer``'s dead letters (at most ``limit``, oldest first) back to its queue;
    the number moved. Only those there when it starts: one that dies again meanwhile waits
    for the next redrive instead of going round."""
    queue_name = bus.queue_name(consumer)
    connection = await aio_pika.connect(bus.url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        # Passive: the group's queue must exist (its service declared it).
        await channel.declare_queue(queue_name, passive=True)
        dlq = await channel.declare_queue(dead_letter_queue(bus, consumer), passive=True)
        waiting = int(dlq.declaration_result.message_count or 0)
        todo = waiting if limit is None else min(waiting, limit)
        moved = 0
        while moved < todo:
            message = await dlq.get(no_ack=False, fail=False)
            if message is None:
                break
            letter = describe(message)
            await _republish(channel, message, queue_name, letter)
            await message.ack()
            moved += 1
            log.info(
                "bus.dead_letter_redriven",
                consumer=consumer,
                event_id=letter.event_id,
                routing_key=letter.routing_key,
                reason=letter.reason,
            )
        return moved


# How many dead letters a replay or discard of one looks through for it.
FIND_LIMIT = 1000


async def settle_one(bus: EventBus, consumer: str, event_id: str, *, replay: bool) -> bool:
    """Replay (back to ``consumer``'s queue, as :func:`redrive` does) or discard (acked away)
    the dead letter of ``event_id``; False when none is there (among the first
    :data:`FIND_LIMIT`). The others looked at are given back. A replayed message is acked in
    the dead-letter queue only after the broker confirmed the copy; a discarded one is logged
    with what names it, so an operator's discard is never silent."""
    queue_name = bus.queue_name(consumer)
    connection = await aio_pika.connect(bus.url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        await channel.declare_queue(queue_name, passive=True)
        dlq = await channel.declare_queue(dead_letter_queue(bus, consumer), passive=True)
        passed: list[AbstractIncomingMessage] = []
        found: AbstractIncomingMessage | None = None
        try:
            while len(passed) < FIND_LIMIT:
                message = await dlq.get(no_ack=False, fail=False)
                if message is None:
                    break
                if message.message_id == event_id:
                    found = message
                    break
                passed.append(message)
            if found is None:
                return False
            letter = describe(found)
            if replay:
                await _republish(channel, found, queue_name, letter)
            await found.ack()
        finally:
            for message in passed:
                await message.nack(requeue=True)
    log.warning(
        "bus.dead_letter_replayed" if replay else "bus.dead_letter_discarded",
        consumer=consumer,
        event_id=letter.event_id,
        routing_key=letter.routing_key,
        reason=letter.reason,
    )
    return True


async def _republish(
    channel: aio_pika.abc.AbstractChannel,
    message: AbstractIncomingMessage,
    queue_name: str,
    letter: DeadLetter,
) -> None:
    """The same message (id, body, headers but the broker's counts) to the group's own queue
    through the default exchange, confirmed."""
    headers = {k: v for k, v in (message.headers or {}).items() if k not in _BROKER_COUNTS}
    await channel.default_exchange.publish(
        aio_pika.Message(
            message.body,
            headers=headers,
            content_type=message.content_type,
            content_encoding=message.content_encoding,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=message.message_id,
            correlation_id=message.correlation_id,
            timestamp=message.timestamp,
            type=letter.routing_key,
        ),
        routing_key=queue_name,
        mandatory=True,
    )


def dead_letter_check(
    bus: EventBus, consumers: Callable[[], Sequence[str]]
) -> Callable[[], Awaitable[dict[str, int]]]:
    """A periodic tick: every count to the gauge, and the warning ``bus.dead_letters`` with
    the non-empty ones."""

    async def check() -> dict[str, int]:
        if not bus.connected:
            return {}  # the broker being away is reported by health, not here
        every = await counts(bus, consumers())
        for name, n in every.items():
            metrics.dead_letter_messages.labels(name).set(n)
        found = {name: n for name, n in every.items() if n}
        if found:
            log.warning("bus.dead_letters", counts=found, total=sum(found.values()))
        return found

    return check
