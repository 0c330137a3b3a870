"""Idempotent consumers: the inbox row and the handler's effect commit in one transaction.

A delivery is acked only after that commit. A repeated delivery (the relay re-published, or
the broker redelivered after a lost ack) finds its inbox row and is acked without effect.
A handler that raises is returned to the queue after a short pause; the queue's delivery limit
then dead-letters it. A message that cannot be decoded is dead-lettered at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog
from aio_pika.abc import AbstractIncomingMessage
from opentelemetry import trace
from pydantic import ValidationError

from visiona.kit.bus import EventBus, Subscription
from visiona.kit.db import Database, UnitOfWork, claim_inbox
from visiona.kit.events import Event, UnknownEvent, decode_event
from visiona.kit.logging import get_logger
from visiona.kit.telemetry import extract_context, tracer

log = get_logger(__name__)
_tracer = tracer(__name__)

EventHandler = Callable[[Any, UnitOfWork], Awaitable[None]]


def _delivery_count(message: AbstractIncomingMessage) -> int:
    value = (message.headers or {}).get("x-delivery-count", 0)
    return int(value) if isinstance(value, int | str) and str(value).isdigit() else 0


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
    ) -> None:
        self.name = name
        self.db = db
        self.bus = bus
        self.handlers = {cls.routing_key: handler for cls, handler in handlers.items()}
        self.retry_pause_s = retry_pause_s
        self._subscription: Subscription | None = None
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def start(self) -> None:
        self._subscription = await self.bus.subscribe(
            self.name, list(self.handlers), self.on_message
        )

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop new deliveries and let in-flight handlers finish; the rest return to the queue."""
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
        routing_key = message.routing_key or ""
        try:
            event = decode_event(routing_key, message.body)
        except (UnknownEvent, ValidationError) as exc:
            log.error(
                "consumer.undecodable", consumer=self.name, routing_key=routing_key, error=str(exc)
            )
            await message.reject(requeue=False)
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
            try:
                async with self.db.uow() as uow:  # claim_inbox sets the event's user
                    if await claim_inbox(uow, self.name, event) and handler is not None:
                        await handler(event, uow)
                    await uow.commit()
            except Exception:
                attempt = _delivery_count(message) + 1
                log.exception("consumer.handler_failed", attempt=attempt)
                # A pause keeps a failing handler from spinning through its delivery limit.
                await asyncio.sleep(min(self.retry_pause_s * attempt, 5.0))
                await message.nack(requeue=True)
                return
            await message.ack()
