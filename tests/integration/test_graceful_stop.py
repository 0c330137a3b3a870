"""Stopping a consumer: the in-flight message finishes and is acked; the rest stay queued."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from tests.support.infra import Infra
from visiona.kit.bus import EventBus

from .events import ProbeHappenedV1
from .support import Kit, cancel_quietly, eventually, recording


class Gate:
    """Holds the handler inside its transaction until the test opens it."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.open = asyncio.Event()

    async def __call__(self, event: ProbeHappenedV1) -> None:
        self.entered.set()
        await self.open.wait()


async def test_stop_finishes_the_in_flight_message_and_leaves_the_rest_queued(
    infra: Infra, kit: Kit, bus: EventBus
) -> None:
    gate = Gate()
    _, consumer = recording("stopping", kit.db, bus, then=gate)
    await consumer.start()
    observer = EventBus(bus.url, bus.exchange_name, queue_prefix=bus.queue_prefix)
    stopping: asyncio.Task[None] | None = None
    try:
        in_flight = ProbeHappenedV1(user_id="alice", n=1)
        await bus.publish_event(in_flight)
        await eventually(_is_set(gate.entered), "the handler to start")

        stopping = asyncio.create_task(consumer.stop())
        await eventually(
            lambda: _broker_has_no_consumer_on(infra, bus.queue_name("stopping")),
            "the broker to drop the consumer",
        )
        assert not stopping.done(), "stop() returned while a handler was still running"
        later = [ProbeHappenedV1(user_id="bob", n=n) for n in (2, 3)]
        for event in later:
            await bus.publish_event(event)

        gate.open.set()
        await stopping

        assert consumer.delivered == [str(in_flight.event_id)]
        assert await kit.count("effects", [in_flight]) == 1
        assert await kit.count("effects", later) == 0
        assert await bus.queue_counts("stopping") == (2, 0)
        # Closing the channel would return an unacked message to the queue: it stays at two.
        await bus.close()
        await observer.connect()
        assert await observer.queue_counts("stopping") == (2, 0)
    finally:
        gate.open.set()
        if stopping is not None:
            await cancel_quietly(stopping)
        await consumer.stop()
        await observer.close()


def _is_set(event: asyncio.Event) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return event.is_set()

    return check


async def _broker_has_no_consumer_on(infra: Infra, queue: str) -> bool:
    # A quorum queue keeps counting a cancelled consumer in queue.declare-ok while it still
    # holds unacked messages; the consumer list shows the cancel at once.
    listed = await asyncio.to_thread(infra.rabbitmqctl, ["-q", "list_consumers", "queue_name"])
    return queue not in listed.split()
