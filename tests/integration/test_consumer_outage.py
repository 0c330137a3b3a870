"""The consumer through a database outage: an unavailable dependency spends none of the
poison-message budget (the delivery is kept and handled again once the database is back),
while a failing handler is still dead-lettered at the delivery limit."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from tests.support.schemas import SchemaDb
from visiona.kit.bus import EventBus
from visiona.kit.db import Database, UnitOfWork

from .events import ProbeHappenedV1
from .support import (
    Kit,
    RecordingConsumer,
    RecordingHandler,
    dead_letters_are,
    eventually,
    recording,
)
from .test_consumer_inbox import HandlerFailed, death_reason, first_dead_letter

# Fast pacing, so that the outage outlasts many delivery limits' worth of attempts.
PACING = {"retry_pause_s": 0.01, "outage_pause_s": 0.05, "outage_pause_max_s": 0.2}
POISON = 1


class CountingDatabase(Database):
    """The kit schema's app-role database, counting the units of work opened on it (each is
    one attempt to handle a delivery)."""

    opened = 0

    def uow(self, user_id: str | None = None, *, system: bool = False) -> UnitOfWork:
        self.opened += 1
        return super().uow(user_id, system=system)


@contextlib.asynccontextmanager
async def counting_db(kit: Kit) -> AsyncIterator[CountingDatabase]:
    db = CountingDatabase(kit.app_url, kit.schema, pool_size=2, max_overflow=0)
    try:
        yield db
    finally:
        await db.dispose()


@contextlib.asynccontextmanager
async def database_unavailable(kit: Kit, role: str) -> AsyncIterator[None]:
    """The app role cannot log in and its open connections are cut, until the block ends."""
    await kit.admin(f'ALTER ROLE "{role}" NOLOGIN')
    try:
        await kit.admin(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", role
        )
        yield
    finally:
        await kit.admin(f'ALTER ROLE "{role}" LOGIN')


async def fail_poison(event: ProbeHappenedV1) -> None:
    if event.n == POISON:
        raise HandlerFailed(f"probe {event.n} is poison")


async def test_a_database_outage_spends_no_delivery_attempt_and_the_event_applies_once_after(
    kit: Kit, kit_database: SchemaDb, bus: EventBus
) -> None:
    async with counting_db(kit) as db:
        handler, consumer = recording("outage", db, bus, then=fail_poison, **PACING)
        await consumer.start()
        try:
            healthy = ProbeHappenedV1(user_id="alice", n=0)
            poison = ProbeHappenedV1(user_id="alice", n=POISON)
            async with database_unavailable(kit, kit_database.roles.app):
                await bus.publish_event(healthy)
                await bus.publish_event(poison)
                # Both deliveries are tried more often than the delivery limit allows
                # (unless they were dead-lettered, which would be the failure).
                budget = 2 * (bus.delivery_limit + 1)
                await eventually(
                    lambda: _tried_or_dead(db, budget + 2, bus, "outage"),
                    "more attempts than the delivery limit allows, during the outage",
                )
                assert await bus.dead_letter_count("outage") == 0
                assert not handler.calls

            await eventually(
                lambda: dead_letters_are(bus, "outage", 1),
                "the poison message to be dead-lettered",
            )
            await eventually(lambda: _applied(kit, healthy), "the event to be applied")

            # The healthy event was delivered once: kept through the outage, never requeued.
            assert consumer.delivered.count(str(healthy.event_id)) == 1
            assert handler.calls[healthy.event_id] == 1
            assert await kit.count("effects", [healthy]) == 1
            assert await kit.count("inbox", [healthy]) == 1
            # The poison one spent exactly its delivery limit, on handler failures alone.
            assert handler.calls[poison.event_id] == bus.delivery_limit + 1
            assert await kit.count("effects", [poison]) == 0
            dead = await first_dead_letter(bus, "outage")
            assert dead.message_id == str(poison.event_id)
            assert death_reason(dead) == "delivery_limit"
            assert (await bus.queue_counts("outage"))[0] == 0
        finally:
            await consumer.stop()


async def test_a_consumer_stopped_during_an_outage_returns_the_delivery_to_the_queue(
    kit: Kit, kit_database: SchemaDb, bus: EventBus
) -> None:
    handler = RecordingHandler()
    event = ProbeHappenedV1(user_id="bob", n=7)
    async with counting_db(kit) as db:
        consumer = RecordingConsumer("stopping", db, bus, {ProbeHappenedV1: handler}, **PACING)
        await consumer.start()
        try:
            async with database_unavailable(kit, kit_database.roles.app):
                await bus.publish_event(event)
                await eventually(
                    lambda: _tried_or_dead(db, 3, bus, "stopping"), "the delivery to be retried"
                )
                await consumer.stop()
                # Handled to the end (nacked back), not left in flight.
                assert consumer.finished == [str(event.event_id)]
                await eventually(
                    lambda: _waiting_in_queue(bus, "stopping", 1), "the delivery back in the queue"
                )
                assert await bus.dead_letter_count("stopping") == 0
        finally:
            await consumer.stop()

        restarted = RecordingConsumer("stopping", db, bus, {ProbeHappenedV1: handler}, **PACING)
        await restarted.start()
        try:
            await eventually(lambda: _applied(kit, event), "the event to be applied after restart")
            assert handler.calls[event.event_id] == 1
            assert await bus.dead_letter_count("stopping") == 0
        finally:
            await restarted.stop()


async def _tried_or_dead(db: CountingDatabase, attempts: int, bus: EventBus, group: str) -> bool:
    return db.opened >= attempts or await bus.dead_letter_count(group) > 0


async def _waiting_in_queue(bus: EventBus, consumer: str, count: int) -> bool:
    return await bus.queue_counts(consumer) == (count, 0)


async def _applied(kit: Kit, event: ProbeHappenedV1) -> bool:
    return await kit.count("effects", [event]) == 1
