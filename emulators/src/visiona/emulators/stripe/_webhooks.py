"""Webhook delivery: every event POSTed, signed, to the configured endpoint, with retries.

Deliveries run on a background task of the serving event loop, started lazily by the first
event (the app may run without a lifespan). First attempts go out in event order; a failed
attempt is retried on its own task after each of ``retry_delays_s`` and then given up.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import stripe

log = logging.getLogger(__name__)

DELIVERY_TIMEOUT_S = 10.0
_USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"


@dataclass
class WebhookConfig:
    url: str | None
    secret: str
    retry_delays_s: list[float]
    paused: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "webhook_url": self.url,
            "webhook_secret": self.secret,
            "retry_delays_s": list(self.retry_delays_s),
            "paused": self.paused,
        }


@dataclass(frozen=True)
class _Pending:
    event_id: str
    type: str
    payload: str


@dataclass
class Dispatcher:
    """Implements the store's ``EventSink``; records every attempt in ``deliveries``."""

    config: WebhookConfig
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    _payloads: dict[str, _Pending] = field(default_factory=dict)
    _loop: asyncio.AbstractEventLoop | None = None
    _queue: asyncio.Queue[_Pending] | None = None
    _resumed: asyncio.Event | None = None
    _worker: asyncio.Task[None] | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    # One client per serving loop: building one loads the CA bundle (~0.1 s).
    _http: httpx.AsyncClient | None = None
    _http_loop: asyncio.AbstractEventLoop | None = None

    def wants_events(self) -> bool:
        return self.config.url is not None

    def publish(self, event: dict[str, Any], payload: str) -> None:
        pending = _Pending(str(event["id"]), str(event["type"]), payload)
        self._payloads[pending.event_id] = pending
        if self.config.url is None:
            return
        queue = self._start()
        queue.put_nowait(pending)

    def set_paused(self, paused: bool) -> None:
        self.config.paused = paused
        if self._resumed is not None:
            if paused:
                self._resumed.clear()
            else:
                self._resumed.set()

    def reset(self) -> None:
        """Drop queued and retrying deliveries and the delivery log."""
        for task in [*self._tasks, *([self._worker] if self._worker else [])]:
            task.cancel()
        self._tasks.clear()
        self._worker, self._queue = None, None
        self.deliveries.clear()
        self._payloads.clear()

    async def deliver_now(self, event_id: str) -> dict[str, Any]:
        """Send one stored event once, now, even while paused; returns the attempt's record."""
        pending = self._payloads[event_id]
        attempt = 1 + sum(1 for d in self.deliveries if d["event_id"] == event_id)
        return await self._send(pending, attempt)

    def _client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._http is None or self._http_loop is not loop:
            self._http = httpx.AsyncClient(timeout=DELIVERY_TIMEOUT_S)
            self._http_loop = loop
        return self._http

    def _start(self) -> asyncio.Queue[_Pending]:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # A new serving loop (the app was restarted): tasks of the old one are gone.
            self._loop, self._worker, self._queue = loop, None, None
            self._tasks.clear()
            self._resumed = asyncio.Event()
            if not self.config.paused:
                self._resumed.set()
        if self._queue is None or self._worker is None or self._worker.done():
            self._queue = asyncio.Queue()
            self._worker = loop.create_task(self._run(self._queue))
        return self._queue

    async def _run(self, queue: asyncio.Queue[_Pending]) -> None:
        while True:
            pending = await queue.get()
            try:
                if not await self._attempt(pending, 1):
                    task = asyncio.get_running_loop().create_task(self._retry(pending))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
            except Exception:
                log.exception("webhook delivery of %s failed", pending.event_id)

    async def _retry(self, pending: _Pending) -> None:
        for attempt, delay in enumerate(list(self.config.retry_delays_s), start=2):
            await asyncio.sleep(delay)
            if await self._attempt(pending, attempt):
                return
        log.warning("giving up on webhook delivery of %s", pending.event_id)

    async def _attempt(self, pending: _Pending, attempt: int) -> bool:
        if self._resumed is not None:
            await self._resumed.wait()
        if self.config.url is None:
            return True  # the endpoint was removed: nothing left to deliver to
        record = await self._send(pending, attempt)
        status = record["status_code"]
        return status is not None and 200 <= status < 300

    async def _send(self, pending: _Pending, attempt: int) -> dict[str, Any]:
        url = self.config.url
        status: int | None = None
        error: str | None = None
        if url is None:
            error = "no webhook_url configured"
        else:
            # Signed afresh on every attempt, so a late retry is still inside the tolerance.
            signature = str(
                stripe.WebhookSignature.generate_signature_header(
                    pending.payload, self.config.secret
                )
            )
            headers = {
                "Content-Type": "application/json; charset=utf-8",
                "Stripe-Signature": signature,
                "User-Agent": _USER_AGENT,
            }
            try:
                response = await self._client().post(
                    url, content=pending.payload.encode(), headers=headers
                )
                status = response.status_code
            except Exception as exc:  # any failure to deliver is this attempt's outcome
                error = f"{type(exc).__name__}: {exc}"
        record = {
            "event_id": pending.event_id,
            "type": pending.type,
            "attempt": attempt,
            "status_code": status,
            "error": error,
            "at": time.time(),
        }
        self.deliveries.append(record)
        return record
