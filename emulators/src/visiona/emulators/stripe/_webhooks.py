"""Webhook delivery: every event POSTed, signed as Stripe signs, to the configured endpoint,
with retries (order, retries and pausing: ``visiona.emulators._delivery``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import stripe

from visiona.emulators._delivery import WebhookDispatcher

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


class Dispatcher(WebhookDispatcher[_Pending, WebhookConfig]):
    """Implements the store's ``EventSink``; records every attempt in ``deliveries``."""

    id_field = "event_id"

    def can_send(self) -> bool:
        return self.config.url is not None

    def wants_events(self) -> bool:
        return self.can_send()

    def publish(self, event: dict[str, Any], payload: str) -> None:
        pending = _Pending(str(event["id"]), str(event["type"]), payload)
        self.messages[pending.event_id] = pending
        if self.can_send():
            self.queue(pending)

    def restore_events(self, events: dict[str, dict[str, Any]], outstanding: list[str]) -> None:
        """The events of a previous run, and those it had still to deliver."""
        for event in events.values():
            self.messages[str(event["id"])] = _Pending(
                str(event["id"]), str(event["type"]), json.dumps(event)
            )
        self.restore([self.messages[e] for e in outstanding if e in self.messages])

    def describe(self, message: _Pending) -> dict[str, Any]:
        return {"event_id": message.event_id, "type": message.type}

    async def _send(self, message: _Pending, attempt: int) -> dict[str, Any]:
        url = self.config.url
        if url is None:
            return self._record(message, attempt, None, "no webhook_url configured")
        # Signed afresh on every attempt, so a late retry is still inside the tolerance.
        signature = str(
            stripe.WebhookSignature.generate_signature_header(message.payload, self.config.secret)
        )
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": signature,
            "User-Agent": _USER_AGENT,
        }
        return self._record(message, attempt, *await self.post(url, message.payload, headers))
