"""Watching and injecting events on a test stack's exchange (the erasure and export sagas)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Self, TypeVar

import httpx
from aio_pika.abc import AbstractIncomingMessage

from tests.support.waiting import eventually, wait_for
from visiona.kit.bus import EventBus, Subscription
from visiona.kit.events import (
    AccountExported,
    AccountPurged,
    Event,
    ExportRequestedV1,
    decode_event,
)

Exported = TypeVar("Exported", bound=AccountExported)


def unique_name(prefix: str) -> str:
    """A user name no other user's id contains (tests match user ids as substrings)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


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

    async def __aexit__(self, *exc: object) -> None:
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

    async def export(
        self, kind: type[Exported], user_id: str, export_id: uuid.UUID, timeout_s: float = 60.0
    ) -> Exported:
        """Ask for ``user_id``'s export as the gateway does; the participant's answer."""
        await self.publish(ExportRequestedV1(user_id=user_id, export_id=export_id))
        done = await self.wait_for(
            lambda e: isinstance(e, kind) and e.export_id == export_id, timeout_s
        )
        assert isinstance(done, kind)
        return done

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


def wait_export(stack: Any, user: str, export_id: str, timeout_s: float = 90) -> dict[str, Any]:
    """Once the user's export (``GET /v1/me/exports/{id}``) is ready or failed: what it says."""
    return dict(
        wait_for(
            "the export to finish",
            lambda: httpx.get(
                f"{stack.url}/v1/me/exports/{export_id}", headers=stack.auth(user)
            ).json(),
            lambda export: export["status"] in ("ready", "failed"),
            timeout_s=timeout_s,
        )
    )


@contextlib.contextmanager
def configured(
    configure: Callable[[dict[str, Any]], object], faulty: dict[str, Any], normal: dict[str, Any]
) -> Iterator[None]:
    """A provider emulator ``configure``d ``faulty`` for the block, ``normal`` again after."""
    configure(faulty)
    try:
        yield
    finally:
        configure(normal)


@contextlib.contextmanager
def restarted_after(stack: Any, service: str) -> Iterator[None]:
    """The block may kill ``service``: it is started again, and ready, when the block ends."""
    try:
        yield
    finally:
        stack.processes.start(service)
        stack.processes.wait_ready()


@contextlib.contextmanager
def slowed_and_restarted(
    stack: Any, service: str, configure: Callable[[dict[str, Any]], object]
) -> Iterator[None]:
    """Every call ``service`` makes to its provider emulator (``configure``) takes 4 s for the
    block, which may kill ``service``; afterwards the provider answers at once again and
    ``service`` is started again, and ready."""
    with (
        restarted_after(stack, service),
        configured(configure, {"latency_ms": 4000}, {"latency_ms": 0}),
    ):
        yield
