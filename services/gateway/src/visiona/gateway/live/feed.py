"""Live events for ``GET /v1/events``: the broker feed and the in-memory fan-out.

Each gateway instance reads the platform's event exchange through a queue of its own: a
classic, exclusive, auto-delete queue named ``<prefix>gateway.live.<host>.<pid>.<random>``,
bound to the keys users follow (:data:`USER_EVENT_KEYS`). It lives exactly as long as the
instance's connection: the broker deletes it when the connection goes, and the robust
connection declares it again after a reconnect. Messages are acked on arrival. This is a
live view, not a source of truth: what happens while the instance is cut off from the broker
is not replayed; clients re-read the resources they show.

The :class:`EventHub` numbers what it receives ``<instance>-<seq>``: ``instance`` is random per
process start, ``seq`` counts up from 1. Per user it keeps the last ``replay_size`` events no
older than ``replay_max_age_s``, so a client that reconnects to the same instance with
``Last-Event-ID`` gets what it missed. An id the instance cannot honour (another instance's,
a restarted instance's, or one older than what the buffer still holds) starts the stream
fresh with a ``resync`` event: the client re-reads its resources, then follows the stream.

Each open stream has a bounded queue. A client that lets it fill is disconnected (its queue
dropped) rather than growing the gateway's memory; it reconnects with ``Last-Event-ID`` and
resumes from the buffer.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import secrets
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from aio_pika.connection import make_url
from pydantic import ValidationError

from visiona.gateway.config import GatewaySettings
from visiona.kit.events import UnknownEvent, decode_event
from visiona.kit.logging import get_logger

log = get_logger(__name__)

#: The routing keys a user's live view follows.
USER_EVENT_KEYS = (
    "training.#",
    "generation.#",
    "billing.credits.changed.v1",
    "billing.plan.changed.v1",
    "billing.credits.rejected.v1",
    "gateway.export.ready.v1",
    "gateway.account.deletion_progressed.v1",
)

ResyncReason = Literal["unknown_last_event_id", "replay_gap"]


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """One event as the stream sends it: ``id``, ``event`` (routing key) and ``data`` (JSON)."""

    seq: int
    id: str
    routing_key: str
    event_id: str
    data: str
    received_at: float


class Subscription:
    """One open stream: events replayed at connection, then live ones through a bounded queue."""

    def __init__(
        self,
        user_id: str,
        capacity: int,
        position: int = 0,
        replay: list[LiveEvent] | None = None,
        resync: ResyncReason | None = None,
    ) -> None:
        self.user_id = user_id
        # Where the client stands when the stream opens (before the replay): its own resume
        # point, or the hub's last seq for a fresh start.
        self.position = position
        self.replay = replay or []
        self.resync = resync
        self.capacity = capacity
        self.overflowed = False
        self.closed = False
        # One slot more than the capacity, so the end marker always fits.
        self._queue: asyncio.Queue[LiveEvent | None] = asyncio.Queue(capacity + 1)

    def offer(self, event: LiveEvent) -> bool:
        """Queue ``event``; False when the stream is closed or its queue is full."""
        if self.closed or self._queue.qsize() >= self.capacity:
            return False
        self._queue.put_nowait(event)
        return True

    def close(self, *, discard: bool = False) -> None:
        """End the stream after what is queued (or at once, dropping it, with ``discard``)."""
        if self.closed:
            return
        self.closed = True
        if discard:
            while not self._queue.empty():
                self._queue.get_nowait()
        self._queue.put_nowait(None)

    async def next(self) -> LiveEvent | None:
        """The next live event, or None when the stream is over."""
        return await self._queue.get()


@dataclass
class _UserLog:
    entries: deque[LiveEvent] = field(default_factory=deque)
    event_ids: set[str] = field(default_factory=set)
    # Highest seq no longer in ``entries``: a resume from before it has a gap.
    evicted_through: int = 0


def new_instance_id() -> str:
    return f"{int(time.time()):x}{secrets.token_hex(3)}"


class EventHub:
    """In-memory fan-out of live events to the open streams of their user.

    Single-threaded (the event loop's): ``publish`` and ``subscribe`` never await, so a stream
    that subscribes sees every event after its replay snapshot exactly once.
    """

    def __init__(
        self,
        *,
        replay_size: int = 100,
        replay_max_age_s: float = 300.0,
        client_queue: int = 256,
        instance: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.instance = instance or new_instance_id()
        self.replay_size = replay_size
        self.replay_max_age_s = replay_max_age_s
        self.client_queue = client_queue
        self._clock = clock
        self._seq = itertools.count(1)
        self._last_seq = 0
        self._logs: dict[str, _UserLog] = {}
        self._streams: dict[str, set[Subscription]] = {}
        # Highest seq evicted from any log that was since dropped whole (its user went quiet).
        self._forgotten_through = 0
        self._next_sweep = clock() + replay_max_age_s
        self._closed = False

    @property
    def open_streams(self) -> int:
        return sum(len(streams) for streams in self._streams.values())

    def publish(self, user_id: str, routing_key: str, event_id: str, data: str) -> LiveEvent | None:
        """Number, buffer and fan out one event; None when it repeats one still buffered."""
        now = self._clock()
        if now >= self._next_sweep:
            self.sweep()
        user_log = self._logs.setdefault(user_id, _UserLog())
        self._trim(user_log, now)
        # The outbox relay delivers at least once: a repeat still in the buffer is dropped.
        if event_id in user_log.event_ids:
            return None
        seq = next(self._seq)
        self._last_seq = seq
        event = LiveEvent(seq, f"{self.instance}-{seq}", routing_key, event_id, data, now)
        if len(user_log.entries) >= self.replay_size:
            self._evict(user_log)
        user_log.entries.append(event)
        user_log.event_ids.add(event_id)
        for stream in tuple(self._streams.get(user_id, ())):
            if not stream.offer(event):
                self._drop_slow(stream)
        return event

    def subscribe(self, user_id: str, last_event_id: str | None = None) -> Subscription:
        """Open a stream for ``user_id``, resuming after ``last_event_id`` when it can."""
        replay: list[LiveEvent] = []
        resync: ResyncReason | None = None
        position = self._last_seq
        if last_event_id:
            last_seq = self._own_seq(last_event_id)
            user_log = self._logs.get(user_id)
            if user_log is not None:
                self._trim(user_log, self._clock())
            horizon = max(self._forgotten_through, user_log.evicted_through if user_log else 0)
            if last_seq is None:
                resync = "unknown_last_event_id"
            elif last_seq < horizon:
                resync = "replay_gap"
            else:
                # Caught up to its own id until the replay moves it on.
                position = last_seq
                if user_log is not None:
                    replay = [e for e in user_log.entries if e.seq > last_seq]
        stream = Subscription(user_id, self.client_queue, position, replay, resync)
        if self._closed:
            stream.close()
        else:
            self._streams.setdefault(user_id, set()).add(stream)
        return stream

    def unsubscribe(self, stream: Subscription) -> None:
        streams = self._streams.get(stream.user_id)
        if streams is not None:
            streams.discard(stream)
            if not streams:
                del self._streams[stream.user_id]
        stream.close(discard=True)

    def sweep(self) -> None:
        """Drop buffered events past their age, and the logs of users left with none."""
        now = self._clock()
        self._next_sweep = now + max(self.replay_max_age_s / 4, 1.0)
        for user_id, user_log in list(self._logs.items()):
            self._trim(user_log, now)
            if not user_log.entries:
                self._forgotten_through = max(self._forgotten_through, user_log.evicted_through)
                del self._logs[user_id]

    def close(self) -> None:
        """End every open stream (shutdown); new streams end at once."""
        self._closed = True
        for streams in self._streams.values():
            for stream in streams:
                stream.close()
        self._streams.clear()

    def _own_seq(self, last_event_id: str) -> int | None:
        instance, _, seq = last_event_id.strip().rpartition("-")
        if instance != self.instance or not (seq.isascii() and seq.isdigit()):
            return None
        value = int(seq)
        return value if value <= self._last_seq else None

    def _trim(self, user_log: _UserLog, now: float) -> None:
        cutoff = now - self.replay_max_age_s
        while user_log.entries and user_log.entries[0].received_at < cutoff:
            self._evict(user_log)

    @staticmethod
    def _evict(user_log: _UserLog) -> None:
        old = user_log.entries.popleft()
        user_log.event_ids.discard(old.event_id)
        user_log.evicted_through = old.seq

    def _drop_slow(self, stream: Subscription) -> None:
        stream.overflowed = True
        self.unsubscribe(stream)
        log.warning("events.slow_client_dropped", queue=stream.capacity)


def live_event(routing_key: str, body: bytes) -> tuple[str, str, str] | None:
    """(user id, event id, JSON) of a message a user may see; None for anything else."""
    try:
        event = decode_event(routing_key, body)
    except UnknownEvent:
        return None
    except ValidationError:
        log.warning("events.undecodable", routing_key=routing_key)
        return None
    if not event.user_id:
        return None
    return event.user_id, str(event.event_id), event.model_dump_json()


class EventFeed:
    """The instance's own queue on the event exchange, feeding an :class:`EventHub`.

    ``start`` returns at once: the first connection is retried in the background until the
    broker answers, so the gateway serves (and streams open, with heartbeats) without it.
    After that aio-pika's robust connection reconnects and declares the queue again.
    """

    def __init__(
        self,
        hub: EventHub,
        *,
        amqp_url: str,
        exchange: str,
        queue_prefix: str = "",
        reconnect_s: float = 2.0,
        prefetch: int = 256,
    ) -> None:
        self.hub = hub
        self.amqp_url = amqp_url
        self.exchange = exchange
        self.reconnect_s = reconnect_s
        self.prefetch = prefetch
        suffix = f"{socket.gethostname()}.{os.getpid()}.{secrets.token_hex(3)}"
        self.queue_name = f"{queue_prefix}gateway.live.{suffix}"
        self._connection: AbstractRobustConnection | None = None
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> EventFeed:
        hub = EventHub(
            replay_size=settings.sse_replay_size,
            replay_max_age_s=settings.sse_replay_max_age_s,
            client_queue=settings.sse_client_queue,
        )
        return cls(
            hub,
            amqp_url=settings.amqp_url.get_secret_value(),
            exchange=settings.events_exchange,
            queue_prefix=settings.queue_prefix,
            reconnect_s=settings.amqp_reconnect_s,
        )

    @property
    def connected(self) -> bool:
        connection = self._connection
        return (
            connection is not None
            and not connection.is_closed
            and bool(connection.connected.is_set())
        )

    async def start(self) -> None:
        # fail_fast off: the first connection is retried like any later one, every
        # ``reconnect_s``, instead of raising while the broker is down.
        self._connection = aio_pika.RobustConnection(
            make_url(self.amqp_url),
            client_properties={"connection_name": f"gateway live {self.queue_name}"},
            reconnect_interval=self.reconnect_s,
            fail_fast=False,
        )
        self._task = asyncio.create_task(self._run(self._connection), name="events-feed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._connection is not None:
            await self._connection.close()
            self._connection = None
        self.hub.close()

    async def _run(self, connection: AbstractRobustConnection) -> None:
        await connection.connect()
        # Declared once; the robust channel declares it all again after each reconnect.
        while True:
            try:
                await self._declare(connection)
            except Exception:
                log.exception("events.feed_declare_failed", retry_in_s=self.reconnect_s)
                await asyncio.sleep(self.reconnect_s)
                continue
            log.info("events.feed_started", queue=self.queue_name)
            return

    async def _declare(self, connection: AbstractRobustConnection) -> None:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=self.prefetch)
        exchange = await channel.declare_exchange(
            self.exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        # Not the kit's durable quorum group queues (shared per consumer name): a queue per
        # instance, gone with its connection. The message TTL keeps a backlog from turning
        # into stale "live" events; the length cap bounds the broker's memory for it.
        queue = await channel.declare_queue(
            self.queue_name,
            durable=False,
            exclusive=True,
            auto_delete=True,
            arguments={
                "x-queue-type": "classic",
                "x-message-ttl": int(self.hub.replay_max_age_s * 1000),
                "x-max-length": 10_000,
                "x-overflow": "drop-head",
            },
        )
        for key in USER_EVENT_KEYS:
            await queue.bind(exchange, routing_key=key)
        await queue.consume(self._on_message)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        # A live view acks on arrival. An ack that fails (the channel went) changes nothing
        # here: a redelivery of the event is dropped by the hub as a repeat.
        with contextlib.suppress(Exception):
            await message.ack()
        found = live_event(message.routing_key or "", message.body)
        if found is not None:
            user_id, event_id, data = found
            self.hub.publish(user_id, message.routing_key or "", event_id, data)
