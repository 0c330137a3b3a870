"""Idempotent consumers: the inbox row and the handler's effect commit in one transaction.

A delivery is acked only after that commit. A repeated delivery (the relay re-published, the
broker redelivered after a lost ack, or an operator redrove a dead letter) finds its inbox row
and is acked without effect. A message that cannot be decoded is dead-lettered at once.

Two kinds of failure are told apart (:func:`visiona.kit.faults.dependency_unavailable`):

- The handler failed (a bug, a message it refuses): the delivery is rejected back to the queue
  after a short pause, and the queue's delivery limit dead-letters it.
- A dependency did not answer (the database, the broker, S3): retrying later will work, so
  it must not spend that budget. The delivery is kept (unacked) and handled again in place
  after a pause that doubles up to a cap, until the dependency answers. If the consumer stops
  meanwhile, the delivery is nacked back to the queue; if the broker takes it back (its
  connection dropped, or its consumer timeout closed the channel), it is let go and comes
  again on the restored channel.

What the broker counts: a quorum queue's ``x-delivery-count`` grows on every return on
RabbitMQ before 4.3 (a nack, a reject, and every unacked message of a channel that closes).
From 4.3 only ``basic.reject`` counts (a nack or a closed channel does not), which is why
handler failures are rejected and a stop nacks. On older brokers a stop during an outage, or
a channel the broker closes, still costs each held delivery one attempt.

Metrics (visiona.kit.metrics), labelled with the group's name: deliveries, redeliveries,
deliveries sent to the dead-letter queue (undecodable, or failed on the last attempt the
queue's delivery limit allows), and the handling time by outcome (handled, duplicate,
failed).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog
from aio_pika.abc import AbstractIncomingMessage
from aiormq.exceptions import ChannelInvalidStateError
from opentelemetry import trace
from pydantic import ValidationError

from visiona.kit import metrics
from visiona.kit.aio import sleep_or_stop
from visiona.kit.bus import EventBus, Subscription
from visiona.kit.db import Database, UnitOfWork, claim_inbox
from visiona.kit.events import Event, UnknownEvent, decode_event
from visiona.kit.faults import dependency_unavailable
from visiona.kit.logging import get_logger
from visiona.kit.settings import ServiceSettings
from visiona.kit.telemetry import extract_context, tracer

log = get_logger(__name__)
_tracer = tracer(__name__)

EventHandler = Callable[[Any, UnitOfWork], Awaitable[None]]

# The longest pause after a failing handler: the delivery limit, not the pause, bounds it.
MAX_RETRY_PAUSE_S = 5.0


def _delivery_count(message: AbstractIncomingMessage) -> int:
    value = (message.headers or {}).get("x-delivery-count", 0)
    return int(value) if isinstance(value, int | str) and str(value).isdigit() else 0


def event_key(message: AbstractIncomingMessage) -> str:
    """The routing key of the event a message carries.

    A redriven dead letter (visiona.kit.deadletters) comes straight to the group's queue
    through the default exchange, so its routing key is the queue's name; the ``type`` the
    publisher set names the event.
    """
    if not message.exchange and message.type:
        return message.type
    return message.routing_key or ""


class EventConsumer:
    """One consumer group: its name is the inbox key and (with the bus prefix) the queue name."""

    def __init__(
        self,
        name: str,
        db: Database,
        bus: EventBus,
        handlers: Mapping[type[Event], EventHandler],
        *,
        retry_pause_s: float = 0.2,
        outage_pause_s: float = 0.5,
        outage_pause_max_s: float = 30.0,
    ) -> None:
        self.name = name
        self.db = db
        self.bus = bus
        self.handlers = {cls.routing_key: handler for cls, handler in handlers.items()}
        self.retry_pause_s = retry_pause_s
        self.outage_pause_s = outage_pause_s
        self.outage_pause_max_s = max(outage_pause_max_s, outage_pause_s)
        self._subscription: Subscription | None = None
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopping = asyncio.Event()
        # Label children looked up once: a delivery should not pay for the lookups.
        self._deliveries = metrics.consumer_deliveries.labels(name)
        self._redeliveries = metrics.consumer_redeliveries.labels(name)
        self._dead_lettered = metrics.consumer_dead_lettered.labels(name)
        self._handled_in = {
            outcome: metrics.consumer_handler_seconds.labels(name, outcome)
            for outcome in ("handled", "duplicate", "failed")
        }

    @classmethod
    def from_settings(
        cls,
        settings: ServiceSettings,
        name: str,
        db: Database,
        bus: EventBus,
        handlers: Mapping[type[Event], EventHandler],
    ) -> EventConsumer:
        return cls(
            name,
            db,
            bus,
            handlers,
            retry_pause_s=settings.consumer_retry_pause_s,
            outage_pause_s=settings.consumer_outage_pause_s,
            outage_pause_max_s=settings.consumer_outage_pause_max_s,
        )

    async def start(self) -> None:
        self._stopping.clear()
        self._subscription = await self.bus.subscribe(
            self.name, list(self.handlers), self.on_message
        )

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop new deliveries and let in-flight handlers finish; deliveries waiting for a
        dependency are nacked back to the queue, and the rest return when the channel closes."""
        self._stopping.set()
        if self._subscription is not None:
            await self._subscription.cancel()
            self._subscription = None
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            log.warning("consumer.stop_timeout", consumer=self.name, in_flight=self._in_flight)

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        self._in_flight += 1
        self._idle.clear()
        try:
            await self._handle(message)
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        started = time.perf_counter()
        self._deliveries.inc()
        if message.redelivered:
            self._redeliveries.inc()
        routing_key = event_key(message)
        try:
            event = decode_event(routing_key, message.body)
        except (UnknownEvent, ValidationError) as exc:
            log.error(
                "consumer.undecodable", consumer=self.name, routing_key=routing_key, error=str(exc)
            )
            await message.reject(requeue=False)
            self._dead_lettered.inc()
            return
        handler = self.handlers.get(routing_key)
        ctx = extract_context(message.headers)
        with (
            _tracer.start_as_current_span(
                f"consume {routing_key}", context=ctx, kind=trace.SpanKind.CONSUMER
            ),
            structlog.contextvars.bound_contextvars(
                consumer=self.name, event_id=str(event.event_id), routing_key=routing_key
            ),
        ):
            outage = 0
            while True:
                try:
                    async with self.db.uow() as uow:  # claim_inbox sets the event's user
                        claimed = await claim_inbox(uow, self.name, event)
                        if claimed and handler is not None:
                            await handler(event, uow)
                        await uow.commit()
                except Exception as exc:
                    if not dependency_unavailable(exc):
                        metrics.observe(self._handled_in["failed"], time.perf_counter() - started)
                        await self._handler_failed(message)
                        return
                    outage += 1
                    if not await self._wait_out(message, outage, exc):
                        return
                    continue
                if outage:
                    log.info("consumer.dependency_back", attempts=outage + 1)
                outcome = "handled" if claimed else "duplicate"
                metrics.observe(self._handled_in[outcome], time.perf_counter() - started)
                await message.ack()
                return

    async def _handler_failed(self, message: AbstractIncomingMessage) -> None:
        attempt = _delivery_count(message) + 1
        log.exception("consumer.handler_failed", attempt=attempt)
        # A pause keeps a failing handler from spinning through its delivery limit.
        await self._paused(min(self.retry_pause_s * attempt, MAX_RETRY_PAUSE_S))
        # A reject (not a nack) is what every RabbitMQ version counts towards the limit.
        with contextlib.suppress(ChannelInvalidStateError):
            await message.reject(requeue=True)
            if attempt > self.bus.delivery_limit:
                # The queue's limit is spent: the broker dead-letters this reject.
                self._dead_lettered.inc()

    async def _wait_out(
        self, message: AbstractIncomingMessage, outage: int, error: Exception
    ) -> bool:
        """Pause before handling the delivery again; False when it is no longer ours to
        handle (the consumer stops, or the broker took it back)."""
        pause = min(self.outage_pause_s * 2 ** (outage - 1), self.outage_pause_max_s)
        # Jitter: replicas and prefetched deliveries do not all come back at the same instant.
        pause *= random.uniform(0.75, 1.0)
        log.warning(
            "consumer.dependency_unavailable",
            attempt=outage,
            retry_in_s=round(pause, 2),
            error=type(error).__name__,
        )
        stopping = await self._paused(pause)
        try:
            channel_open = not message.channel.is_closed
        except ChannelInvalidStateError:
            channel_open = False
        if not channel_open:
            # The broker returned it when the channel went; it comes again on the new one.
            log.warning("consumer.delivery_taken_back", attempts=outage)
            return False
        if stopping:
            with contextlib.suppress(ChannelInvalidStateError):
                await message.nack(requeue=True)
            log.info("consumer.delivery_returned_on_stop", attempts=outage)
            return False
        return True

    async def _paused(self, seconds: float) -> bool:
        """Wait ``seconds``, or less if the consumer stops; True when it is stopping."""
        return await sleep_or_stop(self._stopping, seconds)
