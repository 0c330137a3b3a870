"""The outbox relay: publishes committed outbox rows to RabbitMQ, at least once.

Each pass claims a batch with ``FOR UPDATE SKIP LOCKED`` (so several relays share the work
without publishing a row twice at the same time), publishes every row persistently and
mandatorily, waits for the broker's confirms, and only then marks the rows published, in the
same transaction that holds the claim. A relay that dies between publish and mark leaves its
rows unmarked: they are published again and the consumers' inboxes absorb the duplicate.
Rows that fail are retried with exponential backoff. A LISTEN on the outbox channel wakes the
relay as soon as a row commits; a slow poll covers missed notifications.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

import psycopg
import sqlalchemy as sa
from aio_pika.exceptions import DeliveryError
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from visiona.kit import metrics
from visiona.kit.aio import sleep_or_stop
from visiona.kit.bus import EventBus
from visiona.kit.db import Database
from visiona.kit.logging import get_logger

log = get_logger(__name__)

MAX_BACKOFF_S = 300.0
PUBLISHED_RETENTION = "7 days"
# Far longer than any redelivery can arrive late (delivery limits, DLQ replays by an operator).
INBOX_RETENTION = "30 days"
PURGE_EVERY_S = 3600.0


_CLAIM_BATCH = sa.text(
    "SELECT id, event_id, routing_key, payload::text AS body, headers, attempts FROM outbox "
    "WHERE published_at IS NULL AND next_attempt_at <= now() "
    "ORDER BY id LIMIT :n FOR UPDATE SKIP LOCKED"
)
_MARK_PUBLISHED = sa.text("UPDATE outbox SET published_at = now() WHERE id = ANY(:ids)")


def notify_channel(schema: str) -> str:
    return f"{schema}_outbox"


def backoff_seconds(attempts: int) -> float:
    base = min(MAX_BACKOFF_S, 0.5 * 2.0 ** min(attempts, 10))
    return base * random.uniform(0.8, 1.2)


@dataclass(eq=False)
class OutboxRelay:
    db: Database
    bus: EventBus
    _: KW_ONLY
    batch_size: int = 100
    poll_interval_s: float = 1.0
    _wake: asyncio.Event = field(default_factory=asyncio.Event, init=False)

    async def relay_once(self) -> int:
        """Publish one batch; returns how many rows it claimed.

        While the broker connection is down nothing is claimed: an outage is not the rows'
        fault, so it must not push them into long backoff; the robust connection comes back
        and the next pass publishes them.
        """
        if not self.bus.connected:
            return 0
        confirmed = 0
        async with self.db.engine.connect() as conn, conn.begin():
            rows = (await conn.execute(_CLAIM_BATCH, {"n": self.batch_size})).all()
            if not rows:
                return 0
            metrics.relay_published.inc(len(rows))
            results = await asyncio.gather(
                *(self._publish(row) for row in rows), return_exceptions=True
            )
            done = [row.id for row, result in zip(rows, results, strict=True) if result is None]
            failed = [
                (row, result)
                for row, result in zip(rows, results, strict=True)
                if isinstance(result, BaseException)
            ]
            if done:
                await self._mark_published(conn, done)
                confirmed = len(done)
            for row, error in failed:
                if not isinstance(error, DeliveryError):
                    # The connection or channel failed mid-batch: leave the row as it was.
                    log.warning("relay.publish_interrupted", error=repr(error))
                    continue
                log.warning(
                    "relay.publish_failed",
                    event_id=str(row.event_id),
                    routing_key=row.routing_key,
                    attempts=row.attempts + 1,
                    error=repr(error),
                )
                await conn.execute(
                    sa.text(
                        "UPDATE outbox SET attempts = attempts + 1, last_error = :err, "
                        "next_attempt_at = now() + make_interval(secs => :delay) WHERE id = :id"
                    ),
                    {
                        "id": row.id,
                        "err": repr(error)[:500],
                        "delay": backoff_seconds(row.attempts),
                    },
                )
        if confirmed:
            metrics.relay_confirmed.inc(confirmed)
        return len(rows)

    async def _publish(self, row: Any) -> None:
        await self.bus.publish(
            row.routing_key,
            row.body.encode(),  # jsonb rendered by Postgres: no decode/encode round trip here
            message_id=str(row.event_id),
            headers=dict(row.headers or {}),
        )

    async def _mark_published(self, conn: AsyncConnection, ids: Sequence[int]) -> None:
        await conn.execute(
            _MARK_PUBLISHED,
            {"ids": list(ids)},
        )

    async def purge_old_rows(self) -> None:
        """Housekeeping: published outbox rows and old inbox rows are dropped."""
        async with self.db.engine.begin() as conn:
            await conn.execute(
                sa.text("DELETE FROM outbox WHERE published_at < now() - CAST(:keep AS interval)"),
                {"keep": PUBLISHED_RETENTION},
            )
            await conn.execute(
                sa.text("DELETE FROM inbox WHERE received_at < now() - CAST(:keep AS interval)"),
                {"keep": INBOX_RETENTION},
            )

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until ``stop`` is set; the current batch always finishes."""
        listener = asyncio.create_task(self._listen(stop))
        loop = asyncio.get_running_loop()
        last_purge = loop.time()
        try:
            while not stop.is_set():
                self._wake.clear()
                try:
                    claimed = await self.relay_once()
                except Exception:
                    log.exception("relay.pass_failed")
                    claimed = 0
                    await sleep_or_stop(stop, self.poll_interval_s)
                if loop.time() - last_purge > PURGE_EVERY_S:
                    last_purge = loop.time()
                    with contextlib.suppress(Exception):
                        await self.purge_old_rows()
                if claimed >= self.batch_size:
                    continue
                waiter = asyncio.create_task(self._wake.wait())
                stopper = asyncio.create_task(stop.wait())
                await asyncio.wait(
                    {waiter, stopper},
                    timeout=self.poll_interval_s,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                waiter.cancel()
                stopper.cancel()
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    async def _listen(self, stop: asyncio.Event) -> None:
        url = make_url(self.db.url).set(drivername="postgresql")
        dsn = url.render_as_string(hide_password=False)
        while not stop.is_set():
            try:
                async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
                    await conn.execute(f'LISTEN "{notify_channel(self.db.schema)}"')
                    self._wake.set()  # catch up on anything committed before LISTEN
                    async for _ in conn.notifies():
                        self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("relay.listen_failed", error=repr(exc))
                await sleep_or_stop(stop, 1.0)
