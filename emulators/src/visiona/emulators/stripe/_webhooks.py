"""Webhook delivery: every event POSTed, signed as Stripe signs, to the configured endpoint,
with retries (order, retries and pausing: ``visiona.emulators._delivery``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import stripe

from visiona.emulators._delivery import DeliveryLoop

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
    # Events queued for the endpoint and neither delivered nor given up on yet, in order.
    outstanding: dict[str, None] = field(default_factory=dict)
    _payloads: dict[str, _Pending] = field(default_factory=dict)
    _delivery: DeliveryLoop[_Pending] = field(init=False)
    # Outstanding events of a previous run, queued again once a loop serves (:meth:`resume`).
    _to_resume: list[str] = field(default_factory=list)
    # Told when an event is settled (the state is saved then, not only after a request).
    changed: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        self._delivery = DeliveryLoop(
            self._deliver,
            lambda: self.config.retry_delays_s,
            paused=self.config.paused,
            settled=lambda pending, _delivered: self._settle(pending.event_id),
        )

    def _settle(self, event_id: str) -> None:
        self.outstanding.pop(event_id, None)
        if self.changed is not None:
            self.changed()

    def wants_events(self) -> bool:
        return self.config.url is not None

    def publish(self, event: dict[str, Any], payload: str) -> None:
        pending = _Pending(str(event["id"]), str(event["type"]), payload)
        self._payloads[pending.event_id] = pending
        if self.config.url is not None:
            self.outstanding[pending.event_id] = None
            self._delivery.put(pending)

    def restore(self, events: dict[str, dict[str, Any]], outstanding: list[str]) -> None:
        """The events of a previous run, and those it had still to deliver."""
        for event in events.values():
            self._payloads[str(event["id"])] = _Pending(
                str(event["id"]), str(event["type"]), json.dumps(event)
            )
        self._to_resume = [e for e in outstanding if e in self._payloads]
        self.outstanding = dict.fromkeys(self._to_resume)

    def resume(self) -> None:
        """Queue the restored outstanding events again (in the serving loop, once)."""
        to_resume, self._to_resume = self._to_resume, []
        for event_id in to_resume:
            if self.config.url is None:
                self.outstanding.pop(event_id, None)
            else:
                self._delivery.put(self._payloads[event_id])

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
        self._payloads.clear()
        self.outstanding.clear()
        self._to_resume.clear()

    async def deliver_now(self, event_id: str) -> dict[str, Any]:
        """Send one stored event once, now, even while paused; returns the attempt's record."""
        pending = self._payloads[event_id]
        attempt = 1 + sum(1 for d in self.deliveries if d["event_id"] == event_id)
        return await self._send(pending, attempt)

    async def _deliver(self, pending: _Pending, attempt: int) -> bool:
        if self.config.url is None:
            return True  # the endpoint was removed: nothing left to deliver to
        status = (await self._send(pending, attempt))["status_code"]
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
                response = await self._delivery.client().post(
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
