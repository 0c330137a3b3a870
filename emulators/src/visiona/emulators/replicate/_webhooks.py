"""Webhook delivery, Standard Webhooks style: every event POSTed, signed, with retries.

Each event gets a new ``webhook-id`` that its retries and redeliveries keep; the timestamp and
signature are made afresh on every attempt. Order, retries and pausing:
``visiona.emulators._delivery``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from visiona.emulators._delivery import DeliveryLoop


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
    # Messages queued and neither delivered nor given up on yet, in order.
    outstanding: dict[str, Message] = field(default_factory=dict)
    # Told when a message is settled (the state is saved then).
    changed: Callable[[], None] | None = None
    _delivery: DeliveryLoop[Message] = field(init=False)
    _to_resume: list[Message] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._delivery = DeliveryLoop(
            self._deliver,
            lambda: self.config.retry_delays_s,
            paused=self.config.paused,
            settled=lambda message, _delivered: self._settle(message),
        )

    def publish(self, url: str, object_id: str, event: str, body: str) -> Message:
        message = Message("msg_" + secrets.token_urlsafe(18), url, object_id, event, body)
        self.messages[message.webhook_id] = message
        if self.config.drop:
            self._record(message, 1, None, "dropped (drop_webhooks)")
            return message
        self.outstanding[message.webhook_id] = message
        self._delivery.put(message)
        return message

    def restore(self, outstanding: list[Message]) -> None:
        """What a previous run had still to deliver, queued again by :meth:`resume`."""
        self._to_resume = list(outstanding)
        for message in outstanding:
            self.messages[message.webhook_id] = message
            self.outstanding[message.webhook_id] = message

    def resume(self) -> None:
        """Queue the restored messages again (in the serving loop, once)."""
        to_resume, self._to_resume = self._to_resume, []
        for message in to_resume:
            self._delivery.put(message)

    def _settle(self, message: Message) -> None:
        self.outstanding.pop(message.webhook_id, None)
        if self.changed is not None:
            self.changed()

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

    async def redeliver(self, webhook_id: str) -> dict[str, Any]:
        """Send one stored message once, now, even while paused or dropping; returns the record."""
        message = self.messages[webhook_id]
        attempt = 1 + sum(1 for d in self.deliveries if d["webhook_id"] == webhook_id)
        return await self._send(message, attempt)

    async def _deliver(self, message: Message, attempt: int) -> bool:
        status = (await self._send(message, attempt))["status_code"]
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
            response = await self._delivery.client().post(
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
