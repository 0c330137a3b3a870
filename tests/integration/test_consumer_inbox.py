"""The inbox consumer: exactly-once effects, bounded retries, poison messages dead-lettered."""

from __future__ import annotations

import aio_pika

from visiona.kit.bus import EventBus

from .events import ProbeHappenedV1
from .support import (
    Kit,
    assert_applied_once,
    dead_letters_are,
    eventually,
    finished,
    recording,
    running,
)


class HandlerFailed(RuntimeError):
    pass


async def always_fail(event: ProbeHappenedV1) -> None:
    raise HandlerFailed(f"probe {event.n} always fails")


async def first_dead_letter(bus: EventBus, consumer: str) -> aio_pika.abc.AbstractIncomingMessage:
    connection = await aio_pika.connect(bus.url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(f"{bus.queue_name(consumer)}.dlq", passive=True)
        message = await queue.get(no_ack=False, fail=True)
        assert message is not None
        # Leave it where it is: the dead-letter queue is where poison stays visible.
        await message.nack(requeue=True)
        return message


def death_reason(message: aio_pika.abc.AbstractIncomingMessage) -> object:
    """Why the broker dead-lettered the message, from its first ``x-death`` entry."""
    deaths = message.headers["x-death"]
    assert isinstance(deaths, list)
    first = deaths[0]
    assert isinstance(first, dict)
    return first["reason"]


async def test_duplicate_delivery_is_acked_without_running_the_handler_again(
    kit: Kit, bus: EventBus
) -> None:
    handler, consumer = recording("dup", kit.db, bus)
    async with running(consumer):
        event = ProbeHappenedV1(user_id="alice", n=1)
        await bus.publish_event(event)
        await bus.publish_event(event)
        await eventually(lambda: finished(consumer, 2), "both deliveries to be handled")

        await assert_applied_once(kit, bus, consumer, handler, event)


async def test_failing_handler_is_retried_up_to_the_delivery_limit_then_dead_lettered(
    kit: Kit, bus: EventBus
) -> None:
    handler, consumer = recording("poison", kit.db, bus, then=always_fail, retry_pause_s=0.01)
    async with running(consumer):
        event = ProbeHappenedV1(user_id="alice", n=1)
        await bus.publish_event(event)
        await eventually(
            lambda: dead_letters_are(bus, "poison", 1), "the message to be dead-lettered"
        )

        # Quorum queues dead-letter once the delivery count exceeds x-delivery-limit: the
        # first delivery plus `delivery_limit` redeliveries.
        assert handler.calls[event.event_id] == bus.delivery_limit + 1
        assert (await bus.queue_counts("poison"))[0] == 0
        assert await kit.count("effects", [event]) == 0
        assert await kit.count("inbox", [event]) == 0
        dead = await first_dead_letter(bus, "poison")
        assert dead.message_id == str(event.event_id)
        assert ProbeHappenedV1.model_validate_json(dead.body) == event
        assert death_reason(dead) == "delivery_limit"


async def test_undecodable_message_is_dead_lettered_without_retry(kit: Kit, bus: EventBus) -> None:
    handler, consumer = recording("garbled", kit.db, bus)
    async with running(consumer):
        await bus.publish(ProbeHappenedV1.routing_key, b"not json", message_id="garbled-1")
        await eventually(
            lambda: dead_letters_are(bus, "garbled", 1), "the message to be dead-lettered"
        )

        assert consumer.delivered == ["garbled-1"]
        assert not handler.calls
        assert (await bus.queue_counts("garbled"))[0] == 0
        dead = await first_dead_letter(bus, "garbled")
        assert dead.body == b"not json"
        assert death_reason(dead) == "rejected"
