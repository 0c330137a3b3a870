"""The gateway's own database, outbox relay, consumers and background workers: its side of
the event bus (the live feed, beside it, is the other).

The edge keeps a little state of its own (erasure and export requests, Clerk accounts,
idempotency keys, rate-limit buckets, the audit log) in schema ``gateway``, with the same
rules as every service: row-level security it cannot bypass, events written to its outbox in
the transaction that decides them, consumers with an inbox.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from visiona.gateway.account.erasure import DeletionJobs
from visiona.gateway.account.export import ExportJobs
from visiona.gateway.config import GatewaySettings
from visiona.gateway.edge.pseudonyms import Pseudonyms
from visiona.gateway.providers.clerk import ClerkUsersPort
from visiona.kit.bus import EventBus
from visiona.kit.db import Database
from visiona.kit.logging import get_logger
from visiona.kit.metrics.sampler import JobKind
from visiona.kit.relay import OutboxRelay
from visiona.kit.runtime import BrokerLink, Wiring, retrying
from visiona.kit.storage import Storage

log = get_logger(__name__)


# The sagas' rows the metrics count. An erasure's row goes when it completes (a receipt
# stays), so each of its states is an active one.
ERASURE_JOBS = JobKind(
    "erasure",
    "deletions",
    ("scheduled", "erasing", "finishing"),
    frozenset(),
    created="requested_at",
)
EXPORT_JOBS = JobKind(
    "export",
    "exports",
    ("collecting", "assembling", "ready", "failed", "expired"),
    frozenset({"ready", "failed", "expired"}),
    created="requested_at",
)


@dataclass
class Backplane(Wiring):
    settings: GatewaySettings
    storage: Storage | None
    journal: Storage | None = None
    erasure: DeletionJobs | None = None
    exports: ExportJobs | None = None
    broker: BrokerLink | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _broker_task: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> Backplane:
        db = Database.from_settings(settings)
        bus = EventBus.from_settings(settings)
        storage = Storage.from_settings(settings) if settings.s3_endpoint else None
        journal = None
        if settings.s3_endpoint and settings.erasure_journal_bucket:
            # The backup bucket, with the gateway's S3 credentials and encryption.
            journal = Storage.from_settings(
                settings.model_copy(update={"s3_bucket": settings.erasure_journal_bucket})
            )
        return cls(settings, db, bus, storage, journal)

    def install_account_sagas(self) -> None:
        """The erasure saga (always) and exports (when S3 is configured)."""
        Pseudonyms.from_settings(self.settings)  # refuses to start without a usable key
        self.erasure = DeletionJobs(
            self.db, self.settings, self.storage, ClerkUsersPort(self.settings), self.journal
        )
        self.add_consumer("gateway.erasure", self.erasure.handlers())
        self.add_worker("erasure", self.erasure.run)
        self.add_job_kind(ERASURE_JOBS)
        if self.storage is not None:
            self.exports = ExportJobs(self.db, self.settings, self.storage)
            self.add_consumer("gateway.exports", self.exports.handlers())
            self.add_worker("exports", self.exports.run)
            self.add_job_kind(EXPORT_JOBS)

    async def connect(self) -> None:
        """Database (refusing a role that could bypass RLS) and bucket; waits for them a
        while at start, like the back services do. The broker is not waited for: the edge
        serves without it (events wait in the outbox), see :meth:`start`."""
        await retrying("postgres", self.db.ping, 60)
        await self.db.assert_rls_cannot_be_bypassed()
        if self.storage is not None:
            await retrying("s3", self.storage.ensure_bucket, 60)
        if self.journal is not None:
            await retrying("s3", self.journal.ensure_bucket, 60)

    async def start(self) -> None:
        """Workers at once; the relay once the bus is connected and the consumers consume,
        which :class:`BrokerLink` retries in the background (backoff up to
        ``amqp_reconnect_s``) for as long as the broker takes."""
        self.broker = BrokerLink(
            self.bus, self.consumers, max_wait_s=self.settings.amqp_reconnect_s
        )
        for name, run in self.workers.items():
            self._tasks.append(asyncio.create_task(run(self._stop), name=name))
        self._broker_task = asyncio.create_task(self._on_broker(self.broker), name="broker")
        self._tasks.append(self._broker_task)

    def broker_missing(self) -> list[str]:
        """What of the broker side is not there yet (see :meth:`BrokerLink.missing`)."""
        return ["rabbitmq"] if self.broker is None else self.broker.missing()

    async def _on_broker(self, broker: BrokerLink) -> None:
        if not await broker.run(self._stop):
            return
        relay = OutboxRelay(
            self.db,
            self.bus,
            batch_size=self.settings.relay_batch_size,
            poll_interval_s=self.settings.relay_poll_interval_s,
        )
        await relay.run(self._stop)

    async def stop(self) -> None:
        self._stop.set()
        if self._broker_task is not None and self.broker and not self.broker.attached.is_set():
            # Still attaching: an attempt in flight is abandoned, not waited for.
            self._broker_task.cancel()
        for consumer in self.consumers:
            await consumer.stop(self.settings.shutdown_timeout_s)
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, self.settings.shutdown_timeout_s)
        await self.bus.close()
        await self.db.dispose()
