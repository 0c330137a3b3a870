"""Webhook delivery, Standard Webhooks style: every event POSTed, signed, with retries.

Each event gets a new ``webhook-id`` that its retries and redeliveries keep; the timestamp and
signature are made afresh on every attempt. First attempts go out in event order from one
worker task, started lazily by the first event (the app may run without a lifespan); a failed
attempt is retried on its own task after each of ``retry_delays_s`` and then given up.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

log = logging.getLogger(__name__)

DELIVERY_TIMEOUT_S = 10.0


def sign(secret: str, webhook_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` header value for one attempt."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{webhook_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


@dataclass
class DeliveryConfig:
    secret: str
    retry_delays_s: list[float]
    paused: bool = False
    drop: bool = False


@dataclass(frozen=True)
class Message:
    webhook_id: str
    url: str
    object_id: str
    event: str
    body: str


@dataclass
class Dispatcher:
    """Sends webhook messages and records every attempt in ``deliveries``."""

    config: DeliveryConfig
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    messages: dict[str, Message] = field(default_factory=dict)
    _loop: asyncio.AbstractEventLoop | None = None
    _queue: asyncio.Queue[Message] | None = None
    _resumed: asyncio.Event | None = None
    _worker: asyncio.Task[None] | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    # One client per serving loop: building one loads the CA bundle (~0.1 s).
    _http: httpx.AsyncClient | None = None
    _http_loop: asyncio.AbstractEventLoop | None = None

    def publish(self, url: str, object_id: str, event: str, body: str) -> Message:
        message = Message("msg_" + secrets.token_urlsafe(18), url, object_id, event, body)
        self.messages[message.webhook_id] = message
        if self.config.drop:
            self._record(message, 1, None, "dropped (drop_webhooks)")
            return message
        self._start().put_nowait(message)
        return message

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
        self.messages.clear()

    async def redeliver(self, webhook_id: str) -> dict[str, Any]:
        """Send one stored message once, now, even while paused or dropping; returns the record."""
        message = self.messages[webhook_id]
        attempt = 1 + sum(1 for d in self.deliveries if d["webhook_id"] == webhook_id)
        return await self._send(message, attempt)

    def _client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._http is None or self._http_loop is not loop:
            self._http = httpx.AsyncClient(timeout=DELIVERY_TIMEOUT_S)
            self._http_loop = loop
        return self._http

    def _start(self) -> asyncio.Queue[Message]:
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

    async def _run(self, queue: asyncio.Queue[Message]) -> None:
        while True:
            message = await queue.get()
            try:
                if not await self._attempt(message, 1):
                    task = asyncio.get_running_loop().create_task(self._retry(message))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
            except Exception:
                log.exception("webhook delivery of %s failed", message.webhook_id)

    async def _retry(self, message: Message) -> None:
        for attempt, delay in enumerate(list(self.config.retry_delays_s), start=2):
            await asyncio.sleep(delay)
            if await self._attempt(message, attempt):
                return
        log.warning("giving up on webhook %s (%s)", message.webhook_id, message.event)

    async def _attempt(self, message: Message, attempt: int) -> bool:
        if self._resumed is not None:
            await self._resumed.wait()
        record = await self._send(message, attempt)
        status = record["status_code"]
        return status is not None and 200 <= status < 300

    async def _send(self, message: Message, attempt: int) -> dict[str, Any]:
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "webhook-id": message.webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(
                self.config.secret, message.webhook_id, timestamp, message.body
            ),
        }
        status: int | None = None
        error: str | None = None
        try:
            response = await self._client().post(
                message.url, content=message.body.encode(), headers=headers
            )
            status = response.status_code
        except Exception as exc:  # any failure to deliver is this attempt's outcome
            error = f"{type(exc).__name__}: {exc}"
        return self._record(message, attempt, status, error)

    def _record(
        self, message: Message, attempt: int, status: int | None, error: str | None
    ) -> dict[str, Any]:
        record = {
            "webhook_id": message.webhook_id,
            "object_id": message.object_id,
            "event": message.event,
            "url": message.url,
            "attempt": attempt,
            "status_code": status,
            "error": error,
            "at": time.time(),
        }
        self.deliveries.append(record)
        return record
