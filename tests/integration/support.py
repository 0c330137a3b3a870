"""Helpers for the kit reliability tests: probe events, a recording handler and consumer."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
import sqlalchemy as sa
from aio_pika.abc import AbstractIncomingMessage

from tests.support import waiting
from visiona.kit.bus import EventBus
from visiona.kit.consumer import EventConsumer
from visiona.kit.db import Database, UnitOfWork

from .events import ProbeHappenedV1

DEADLINE_S = 30.0


@dataclass
class Kit:
    """The kit test schema: an app-role ``Database`` and a superuser view past RLS.

    ``*_url`` are SQLAlchemy URLs; ``admin_url`` is the superuser's libpq conninfo.
    """

    db: Database
    app_url: str
    migrator_url: str
    superuser_url: str
    admin_url: str
    schema: str

    async def admin(self, query: str, *params: object) -> list[tuple[object, ...]]:
        """Run SQL as a superuser (row-level security does not apply)."""
        async with await psycopg.AsyncConnection.connect(self.admin_url, autocommit=True) as conn:
            cur = await conn.execute(query, params or None)
            return await cur.fetchall() if cur.description else []

    async def count(self, table: str, events: Sequence[ProbeHappenedV1]) -> int:
        rows = await self.admin(
            f"SELECT count(*) FROM {self.schema}.{table} WHERE event_id = ANY(%s)",
            [e.event_id for e in events],
        )
        return _scalar(rows)

    async def unpublished(self, events: Sequence[ProbeHappenedV1]) -> int:
        rows = await self.admin(
            f"SELECT count(*) FROM {self.schema}.outbox "
            "WHERE event_id = ANY(%s) AND published_at IS NULL",
            [e.event_id for e in events],
        )
        return _scalar(rows)


def _scalar(rows: list[tuple[object, ...]]) -> int:
    value = rows[0][0]
    assert isinstance(value, int)
    return value


async def emit_probes(
    db: Database, count: int, users: Iterable[str] = ("alice", "bob")
) -> list[ProbeHappenedV1]:
    """Write ``count`` probe events to the outbox, one unit of work per user."""
    users = list(users)
    events = [ProbeHappenedV1(user_id=users[i % len(users)], n=i) for i in range(count)]
    for user in users:
        async with db.uow(user) as uow:
            for event in events:
                if event.user_id == user:
                    uow.emit(event)
            await uow.commit()
    return events


async def insert_effect(event: ProbeHappenedV1, uow: UnitOfWork) -> None:
    await uow.session.execute(
        sa.text("INSERT INTO effects (event_id, user_id, n) VALUES (:e, :u, :n)"),
        {"e": event.event_id, "u": event.user_id, "n": event.n},
    )


@dataclass
class RecordingHandler:
    """Applies the probe's effect in the consumer's unit of work and counts every call.

    ``then`` runs after the effect is written (inside the same transaction), e.g. to fail.
    """

    then: Callable[[ProbeHappenedV1], Awaitable[None]] | None = None
    calls: Counter[uuid.UUID] = field(default_factory=Counter)

    async def __call__(self, event: ProbeHappenedV1, uow: UnitOfWork) -> None:
        self.calls[event.event_id] += 1
        await insert_effect(event, uow)
        if self.then is not None:
            await self.then(event)


class RecordingConsumer(EventConsumer):
    """An ``EventConsumer`` that records every delivery it receives and finishes handling."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.delivered: list[str | None] = []
        self.finished: list[str | None] = []

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        self.delivered.append(message.message_id)
        try:
            await super().on_message(message)
        finally:
            self.finished.append(message.message_id)


def recording(
    group: str,
    db: Database,
    bus: EventBus,
    then: Callable[[ProbeHappenedV1], Awaitable[None]] | None = None,
    **options: Any,
) -> tuple[RecordingHandler, RecordingConsumer]:
    """A recording handler of the probe event (``then`` after its effect) and the consumer
    group ``group`` that runs it (``options``: the consumer's pacing)."""
    handler = RecordingHandler(then=then)
    return handler, RecordingConsumer(group, db, bus, {ProbeHappenedV1: handler}, **options)


@contextlib.asynccontextmanager
async def running(consumer: EventConsumer) -> AsyncIterator[None]:
    """``consumer`` consuming for the block, stopped afterwards whatever happened."""
    await consumer.start()
    try:
        yield
    finally:
        await consumer.stop()


async def finished(consumer: RecordingConsumer, count: int) -> bool:
    return len(consumer.finished) >= count


async def dead_letters_are(bus: EventBus, group: str, count: int) -> bool:
    return await bus.dead_letter_count(group) == count


async def assert_applied_once(
    kit: Kit,
    bus: EventBus,
    consumer: RecordingConsumer,
    handler: RecordingHandler,
    event: ProbeHappenedV1,
) -> None:
    """Two deliveries of ``event`` came and went: one effect, one inbox row, nothing left
    queued or dead-lettered."""
    assert consumer.delivered == [str(event.event_id)] * 2
    assert handler.calls[event.event_id] == 1
    assert await kit.count("effects", [event]) == 1
    assert await kit.count("inbox", [event]) == 1
    assert await bus.queue_counts(consumer.name) == (0, 1)
    assert await bus.dead_letter_count(consumer.name) == 0


async def eventually(predicate: Callable[[], Awaitable[bool]], what: str) -> None:
    """Wait (bounded) until ``predicate`` holds; fail the test naming ``what`` otherwise."""
    await waiting.eventually(what, predicate, DEADLINE_S)


async def cancel_quietly(task: asyncio.Task[Any]) -> None:
    task.cancel()
    # Cleanup must not mask the test's own failure.
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
