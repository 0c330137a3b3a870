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
from dataclasses import dataclass
from typing import Any

from visiona.emulators._delivery import WebhookDispatcher


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


class Dispatcher(WebhookDispatcher[Message, DeliveryConfig]):
    """Sends webhook messages and records every attempt in ``deliveries``."""

    id_field = "webhook_id"

    def publish(self, url: str, object_id: str, event: str, body: str) -> Message:
        message = Message("msg_" + secrets.token_urlsafe(18), url, object_id, event, body)
        self.messages[message.webhook_id] = message
        if self.config.drop:
            self._record(message, 1, None, "dropped (drop_webhooks)")
        else:
            self.queue(message)
        return message

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
        return self._record(message, attempt, *await self.post(message.url, message.body, headers))

    def describe(self, message: Message) -> dict[str, Any]:
        return {
            "webhook_id": message.webhook_id,
            "object_id": message.object_id,
            "event": message.event,
            "url": message.url,
        }
