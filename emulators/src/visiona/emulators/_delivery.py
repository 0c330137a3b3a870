"""Webhook delivery machinery shared by the emulators that send webhooks (Stripe, Replicate).

First attempts go out in publish order from one worker task of the serving event loop,
started lazily by the first message (an app run by ``_server.running`` has no lifespan); a
failed attempt is retried on its own task after each of the configured delays, then given
up. Pausing holds every attempt until resumed. How a message is signed and sent, and what
is recorded, is the emulator's: it passes ``send(message, attempt) -> delivered``, and
``settled(message, delivered)`` learns when a message is delivered or given up on (what an
emulator keeping its state on disk no longer has to send after a restart).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

import httpx

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
