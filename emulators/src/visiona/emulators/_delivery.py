"""Webhook delivery machinery shared by the emulators that send webhooks (Stripe, Replicate).

First attempts go out in publish order from one worker task of the serving event loop,
started lazily by the first message (an app run by ``_server.running`` has no lifespan); a
failed attempt is retried on its own task after each of the configured delays, then given
up. Pausing holds every attempt until resumed. How a message is signed and sent, and what
is recorded, is the emulator's: it passes ``send(message, attempt) -> delivered``, and
``settled(message, delivered)`` learns when a message is delivered or given up on (what an
emulator keeping its state on disk no longer has to send after a restart).
:class:`WebhookDispatcher` is the bookkeeping around it that those emulators share.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import httpx
from fastapi import FastAPI

log = logging.getLogger(__name__)

DELIVERY_TIMEOUT_S = 10.0

M = TypeVar("M")


def retry_delays_from_env(name: str, default: Sequence[float]) -> tuple[float, ...]:
    """Seconds between a webhook's attempts, comma-separated in ``name`` (``default`` when it
    is unset or empty)."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return tuple(default)
    delays = tuple(float(d) for d in raw.split(",") if d.strip())
    if any(d < 0 for d in delays):
        raise ValueError(f"{name}: delays must not be negative")
    return delays


class DeliveryLoop(Generic[M]):
    def __init__(
        self,
        send: Callable[[M, int], Awaitable[bool]],
        retry_delays_s: Callable[[], Sequence[float]],
        *,
        paused: bool = False,
        settled: Callable[[M, bool], None] | None = None,
    ) -> None:
        self._send = send
        self._delays = retry_delays_s
        self._settled = settled
        self.paused = paused
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[M] | None = None
        self._resumed: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # Messages put and not yet delivered or given up on (queued, paused, retrying).
        self.pending = 0
        # One client per serving loop: building one loads the CA bundle (~0.1 s).
        self._http: httpx.AsyncClient | None = None
        self._http_loop: asyncio.AbstractEventLoop | None = None

    def put(self, message: M) -> None:
        self._start().put_nowait(message)
        self.pending += 1

    def set_paused(self, paused: bool) -> None:
        self.paused = paused
        if self._resumed is not None:
            if paused:
                self._resumed.clear()
            else:
                self._resumed.set()

    def cancel_all(self) -> None:
        """Drop queued and retrying deliveries."""
        for task in [*self._tasks, *([self._worker] if self._worker else [])]:
            task.cancel()
        self._tasks.clear()
        self._worker, self._queue = None, None
        self.pending = 0

    def client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._http is None or self._http_loop is not loop:
            self._http = httpx.AsyncClient(timeout=DELIVERY_TIMEOUT_S)
            self._http_loop = loop
        return self._http

    def _start(self) -> asyncio.Queue[M]:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # A new serving loop (the app was restarted): tasks of the old one are gone.
            self._loop, self._worker, self._queue = loop, None, None
            self._tasks.clear()
            self.pending = 0
            self._resumed = asyncio.Event()
            if not self.paused:
                self._resumed.set()
        if self._queue is None or self._worker is None or self._worker.done():
            self._queue = asyncio.Queue()
            self._worker = loop.create_task(self._run(self._queue))
        return self._queue

    async def _run(self, queue: asyncio.Queue[M]) -> None:
        while True:
            message = await queue.get()
            try:
                if await self._attempt(message, 1):
                    self._done(message, True)
                else:
                    task = asyncio.get_running_loop().create_task(self._retry(message))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
            except Exception:
                self._done(message, False)
                log.exception("webhook delivery of %r failed", message)

    async def _retry(self, message: M) -> None:
        # Canceled (a reset, which zeroes ``pending`` itself): neither delivered nor given up.
        try:
            for attempt, delay in enumerate(list(self._delays()), start=2):
                await asyncio.sleep(delay)
                if await self._attempt(message, attempt):
                    self._done(message, True)
                    return
            log.warning("giving up on webhook delivery of %r", message)
        except Exception:
            log.exception("webhook delivery of %r failed", message)
        self._done(message, False)

    def _done(self, message: M, delivered: bool) -> None:
        self.pending -= 1
        if self._settled is not None:
            self._settled(message, delivered)

    async def _attempt(self, message: M, attempt: int) -> bool:
        if self._resumed is not None:
            await self._resumed.wait()
        return await self._send(message, attempt)


class DeliverySwitches(Protocol):
    """What a dispatcher's configuration has at least (changed at runtime)."""

    retry_delays_s: list[float]
    paused: bool


C = TypeVar("C", bound=DeliverySwitches)


class WebhookDispatcher(Generic[M, C]):
    """Webhook messages around a :class:`DeliveryLoop`: every message by id (``messages``), those
    queued and neither delivered nor given up on yet, in order (``outstanding``: what a restarted
    emulator sends again, see :meth:`restore`), and a record of every attempt (``deliveries``).

    A subclass names its messages' id attribute (:attr:`id_field`, also the id's key in the
    records), says what a record tells of a message (:meth:`describe`), sends one attempt
    (:meth:`_send`) and, when it can lose its endpoint, says whether it has one
    (:meth:`can_send`).
    """

    # The id attribute of a message, and the id's key in its attempts' records.
    id_field: ClassVar[str]

    def __init__(self, config: C) -> None:
        self.config = config
        self.deliveries: list[dict[str, Any]] = []
        self.messages: dict[str, M] = {}
        self.outstanding: dict[str, M] = {}
        # Told when a message is settled (the state is saved then, not only after a request).
        self.changed: Callable[[], None] | None = None
        # Outstanding messages of a previous run, queued again once a loop serves.
        self._to_resume: list[M] = []
        self._delivery = DeliveryLoop(
            self._deliver,
            lambda: self.config.retry_delays_s,
            paused=config.paused,
            settled=lambda message, _delivered: self._settle(message),
        )

    def key(self, message: M) -> str:
        return str(getattr(message, self.id_field))

    def can_send(self) -> bool:
        return True

    def describe(self, message: M) -> dict[str, Any]:
        """What an attempt's record says of its message (its id first)."""
        raise NotImplementedError

    async def _send(self, message: M, attempt: int) -> dict[str, Any]:
        """Send one attempt; answer its :meth:`_record`."""
        raise NotImplementedError

    def queue(self, message: M) -> None:
        self.outstanding[self.key(message)] = message
        self._delivery.put(message)

    def restore(self, outstanding: Sequence[M]) -> None:
        """What a previous run had still to deliver, queued again by :meth:`resume`."""
        self._to_resume = list(outstanding)
        for message in outstanding:
            self.messages[self.key(message)] = message
            self.outstanding[self.key(message)] = message

    def resume(self) -> None:
        """Queue the restored messages again (in the serving loop, once)."""
        to_resume, self._to_resume = self._to_resume, []
        for message in to_resume:
            if self.can_send():
                self._delivery.put(message)
            else:
                self.outstanding.pop(self.key(message), None)

    @property
    def pending(self) -> int:
        return self._delivery.pending

    def set_paused(self, paused: bool) -> None:
        self.config.paused = paused
        self._delivery.set_paused(paused)

    def reset(self) -> None:
        """Drop queued and retrying deliveries and the delivery log."""
        self._delivery.cancel_all()
        self.deliveries.clear()
        self.messages.clear()
        self.outstanding.clear()
        self._to_resume.clear()

    async def redeliver(self, message_id: str) -> dict[str, Any]:
        """Send one stored message once, now, whatever the switches (paused, dropping); answer
        the attempt's record."""
        message = self.messages[message_id]
        attempt = 1 + sum(1 for d in self.deliveries if d[self.id_field] == message_id)
        return await self._send(message, attempt)

    async def post(
        self, url: str, body: str, headers: dict[str, str]
    ) -> tuple[int | None, str | None]:
        """POST one attempt; answer its status code, or the error that kept it from one."""
        try:
            response = await self._delivery.client().post(
                url, content=body.encode(), headers=headers
            )
        except Exception as exc:  # any failure to deliver is this attempt's outcome
            return None, f"{type(exc).__name__}: {exc}"
        return response.status_code, None

    def _record(
        self, message: M, attempt: int, status: int | None, error: str | None
    ) -> dict[str, Any]:
        record = {
            **self.describe(message),
            "attempt": attempt,
            "status_code": status,
            "error": error,
            "at": time.time(),
        }
        self.deliveries.append(record)
        return record

    def _settle(self, message: M) -> None:
        self.outstanding.pop(self.key(message), None)
        if self.changed is not None:
            self.changed()

    async def _deliver(self, message: M, attempt: int) -> bool:
        if not self.can_send():
            return True  # the endpoint was removed: nothing left to deliver to
        status = (await self._send(message, attempt))["status_code"]
        return status is not None and 200 <= status < 300


class DeliveryLog(Protocol):
    @property
    def deliveries(self) -> list[dict[str, Any]]: ...

    @property
    def pending(self) -> int: ...


def add_delivery_routes(app: FastAPI, source: DeliveryLog) -> None:
    """``GET /_emulator/deliveries`` (every attempt) and ``GET /_emulator/deliveries/pending``."""

    @app.get("/_emulator/deliveries")
    async def deliveries() -> list[dict[str, Any]]:
        return list(source.deliveries)

    @app.get("/_emulator/deliveries/pending")
    async def pending_deliveries() -> dict[str, int]:
        """Webhooks still to be delivered or given up on (queued, paused, retrying)."""
        return {"pending": source.pending}
