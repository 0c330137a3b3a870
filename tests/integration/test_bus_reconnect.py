"""Losing the broker connection: consumers come back and the relay keeps publishing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from tests.support.infra import Infra
from visiona.kit.bus import EventBus
from visiona.kit.relay import OutboxRelay

from .events import ProbeHappenedV1
from .support import Kit, emit_probes, eventually, recording


async def close_broker_connections(infra: Infra, connection_name: str) -> int:
    """The broker closes every connection that goes by ``connection_name`` (only this
    test's: a stack running beside it is left alone)."""
    listed = await asyncio.to_thread(
        infra.rabbitmqctl, ["-q", "list_connections", "pid", "client_properties"]
    )
    mine = f'{{"connection_name","{connection_name}"}}'
    pids = [line.split("\t", 1)[0] for line in listed.splitlines() if mine in line]
    for pid in pids:
        await asyncio.to_thread(infra.rabbitmqctl, ["close_connection", pid, "visiona test"])
    return len(pids)


async def test_consumer_and_relay_recover_after_the_broker_closes_their_connection(
    infra: Infra, kit: Kit, bus: EventBus
) -> None:
    handler, consumer = recording("reconnect", kit.db, bus)
    await consumer.start()
    stop = asyncio.Event()
    relay = asyncio.create_task(OutboxRelay(kit.db, bus, poll_interval_s=0.2).run(stop))
    # A connection of its own, opened after the outage, sees the broker's view of the queue.
    observer = EventBus(bus.url, bus.exchange_name, queue_prefix=bus.queue_prefix)
    try:
        before = await emit_probes(kit.db, 10)
        await eventually(lambda: _applied(kit, before), "events before the outage to apply")
        assert await bus.queue_counts("reconnect") == (0, 1)

        assert await close_broker_connections(infra, bus.connection_name) == 1
        await eventually(_not_connected(bus), "the bus to notice the closed connection")
        during = await emit_probes(kit.db, 10)

        await observer.connect()
        await eventually(
            lambda: _consumers_are(observer, "reconnect", 1), "the consumer to be back"
        )
        after = await emit_probes(kit.db, 10)

        events = before + during + after
        await eventually(lambda: _applied(kit, events), "every event to apply")
        # The outage was not the events' fault: none was pushed into backoff because of it.
        assert await kit.admin(
            "SELECT count(*) FROM kittest.outbox WHERE event_id = ANY(%s) AND attempts > 0",
            [e.event_id for e in events],
        ) == [(0,)]
        assert handler.calls == {e.event_id: 1 for e in events}
        assert await kit.count("inbox", events) == len(events)
        assert await observer.dead_letter_count("reconnect") == 0
        assert await observer.queue_counts("reconnect") == (0, 1)
    finally:
        stop.set()
        await relay
        await consumer.stop()
        await observer.close()


def _not_connected(bus: EventBus) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return not bus.connected

    return check


async def _consumers_are(bus: EventBus, consumer: str, count: int) -> bool:
    try:
        return (await bus.queue_counts(consumer))[1] == count
    except Exception:
        return False


async def _applied(kit: Kit, events: list[ProbeHappenedV1]) -> bool:
    return await kit.count("effects", events) == len(events) and not await kit.unpublished(events)
