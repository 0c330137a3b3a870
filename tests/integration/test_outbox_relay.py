"""The outbox relay: at-least-once publishing that the consumers' inboxes turn into exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from visiona.kit.bus import EventBus
from visiona.kit.relay import OutboxRelay

from .events import ProbeHappenedV1
from .support import (
    Kit,
    assert_applied_once,
    emit_probes,
    eventually,
    finished,
    recording,
    running,
)


class RelayDied(RuntimeError):
    """Stands in for the process dying after the confirms arrived, before the mark commits."""


class RelayDyingBeforeMark(OutboxRelay):
    async def _mark_published(self, conn: AsyncConnection, ids: Sequence[int]) -> None:
        raise RelayDied


class CountingRelay(OutboxRelay):
    """Counts the rows each pass claims, to see that relays share rather than repeat work."""

    claimed = 0

    async def relay_once(self) -> int:
        claimed = await super().relay_once()
        self.claimed += claimed
        return claimed


async def test_relay_dying_after_publish_republishes_and_the_inbox_applies_once(
    kit: Kit, bus: EventBus
) -> None:
    handler, consumer = recording("crash", kit.db, bus)
    async with running(consumer):
        (event,) = await emit_probes(kit.db, 1)

        with pytest.raises(RelayDied):
            await RelayDyingBeforeMark(kit.db, bus).relay_once()
        await eventually(lambda: finished(consumer, 1), "the first delivery to be handled")
        assert await kit.unpublished([event]) == 1
        assert await kit.admin("SELECT attempts FROM kittest.outbox") == [(0,)]

        assert await OutboxRelay(kit.db, bus).relay_once() == 1
        await eventually(lambda: finished(consumer, 2), "the second delivery to be handled")

        await assert_applied_once(kit, bus, consumer, handler, event)
        assert await kit.unpublished([event]) == 0


async def test_concurrent_relays_publish_every_event_exactly_once(kit: Kit, bus: EventBus) -> None:
    handler, consumer = recording("shared", kit.db, bus)
    await consumer.start()
    events = await emit_probes(kit.db, 300)
    relays = [CountingRelay(kit.db, bus, batch_size=10, poll_interval_s=0.2) for _ in range(2)]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(relay.run(stop)) for relay in relays]
    try:
        await eventually(
            lambda: _applied(kit, events), "every event to be applied and every row published"
        )
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        await consumer.stop()

    assert all(relay.claimed > 0 for relay in relays), "the relays did not run side by side"
    assert sum(relay.claimed for relay in relays) == len(events)
    assert Counter(consumer.delivered) == {str(e.event_id): 1 for e in events}
    assert handler.calls == {e.event_id: 1 for e in events}
    assert await kit.count("inbox", events) == len(events)


async def test_unroutable_event_stays_unpublished_and_backs_off(kit: Kit, bus: EventBus) -> None:
    (event,) = await emit_probes(kit.db, 1)  # no queue is bound to its routing key on this bus
    relay = OutboxRelay(kit.db, bus)

    assert await relay.relay_once() == 1

    rows = await kit.admin(
        "SELECT published_at, attempts, last_error, next_attempt_at > now() "
        "FROM kittest.outbox WHERE event_id = %s",
        event.event_id,
    )
    assert len(rows) == 1
    published_at, attempts, last_error, backing_off = rows[0]
    assert published_at is None
    assert attempts == 1
    assert "NO_ROUTE" in str(last_error)
    assert backing_off is True
    assert await relay.relay_once() == 0, "the relay retried before the backoff passed"


async def _applied(kit: Kit, events: Sequence[ProbeHappenedV1]) -> bool:
    return await kit.count("effects", events) == len(events) and not await kit.unpublished(events)


async def test_housekeeping_drops_old_published_rows_and_old_inbox_rows(
    kit: Kit, bus: EventBus
) -> None:
    fresh, old = await emit_probes(kit.db, 2)
    await kit.admin(
        "UPDATE kittest.outbox SET published_at = now() - interval '8 days' WHERE event_id = %s",
        old.event_id,
    )
    await kit.admin(
        "INSERT INTO kittest.inbox (consumer, event_id, routing_key, received_at) VALUES "
        "('c', %s, 'k', now() - interval '31 days'), ('c', %s, 'k', now())",
        old.event_id,
        fresh.event_id,
    )
    await OutboxRelay(kit.db, bus).purge_old_rows()
    assert await kit.admin("SELECT event_id FROM kittest.outbox") == [(fresh.event_id,)]
    assert await kit.admin("SELECT event_id FROM kittest.inbox") == [(fresh.event_id,)]
