"""Watching and injecting events on a test stack's exchange (the erasure and export sagas)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Self

from aio_pika.abc import AbstractIncomingMessage

from tests.support.waiting import eventually
from visiona.kit.bus import EventBus, Subscription
from visiona.kit.events import AccountPurged, Event, decode_event


class EventProbe:
    """A throwaway consumer group bound to ``routing_keys`` on the stack's exchange: records
    every event it sees, and publishes events as if a service had (at-least-once, like the
    relay)."""

    def __init__(self, stack: Any, routing_keys: Sequence[str]) -> None:
        cfg = stack.cfg
        self.bus = EventBus(
            cfg.amqp_url, cfg.exchange, queue_prefix=cfg.queue_prefix, delivery_limit=3
        )
        self.group = f"probe-{uuid.uuid4().hex[:8]}"
        self.routing_keys = list(routing_keys)
        self.seen: list[Event] = []
        self._changed = asyncio.Event()
        self._subscription: Subscription | None = None

    async def __aenter__(self) -> Self:
        await self.bus.connect()
        self._subscription = await self.bus.subscribe(
            self.group, self.routing_keys, self._on_message
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._subscription is not None:
            await self._subscription.cancel()
        queue = self.bus.queue_name(self.group)
        channel = await self.bus._connection.channel()  # type: ignore[union-attr]
        for name in (queue, f"{queue}.dlq"):
            await channel.queue_delete(name)
        await self.bus.close()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        self.seen.append(decode_event(message.routing_key or "", message.body))
        self._changed.set()
        await message.ack()

    async def publish(self, event: Event) -> None:
        await self.bus.publish_event(event)

    async def wait_for(self, predicate: Callable[[Event], bool], timeout_s: float = 60.0) -> Event:
        """The first event seen (now or later) that satisfies ``predicate``."""
        deadline = time.monotonic() + timeout_s
        while True:
            for event in self.seen:
                if predicate(event):
                    return event
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                keys = [e.routing_key for e in self.seen]
                raise AssertionError(f"no matching event within {timeout_s} s; saw {keys}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)


def purged_by(
    kind: type[AccountPurged], deletion_id: uuid.UUID, round_: int
) -> Callable[[Event], bool]:
    """Matches a participant's answer (``kind``) to one round of one erasure."""

    def match(event: Event) -> bool:
        return (
            isinstance(event, kind) and event.deletion_id == deletion_id and event.round == round_
        )

    return match


async def wait_seen(
    probe: EventProbe, match: Callable[[Event], bool], count: int, timeout_s: float = 30
) -> list[Any]:
    """Once ``count`` events matching ``match`` were seen: all of them."""

    def enough() -> list[Any] | None:
        seen = [e for e in probe.seen if match(e)]
        return seen if len(seen) >= count else None

    found: list[Any] = await eventually(f"{count} matching events", enough, timeout_s)
    return found
