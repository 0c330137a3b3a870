"""Stripe webhooks: store verified events by id, then apply them asynchronously.

:func:`ingest` (called by the gateway over gRPC) verifies the signature on the raw body, stores
the event under its id and, for a type billing acts on, stages an internal
``billing.stripe_event.received.v1`` in the same statement. :class:`StripeEventApplier` applies
it (its consumer is in ``consumers.py``): one transaction holds the inbox claim, the event row
(locked), the effects and the outbox, so a crash anywhere applies the event exactly once.

Stripe sends events more than once and out of order, so every handler re-fetches the object
whose state it acts on (under a per-object advisory lock) instead of trusting the snapshot,
and every credit movement has a key derived from the Stripe object (``domain/ledger.py``).
Credits are granted only here, from verified events: never from a browser redirect. The
handlers, by what they change: ``checkout.py``, ``invoice.py``, ``subscription.py``,
``payment.py``. What is kept of a payload: ``domain/stripe_event.py``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime

from visiona.billing.domain.catalog import Catalog
from visiona.billing.domain.stripe_event import (
    DEFERRED,
    HANDLED_TYPES,
    IGNORED,
    is_handled,
    kept_payload,
    redacted,
)
from visiona.billing.providers.stripe import StripeObj, StripePort, WebhookVerifier, field
from visiona.billing.repository import stripe_event
from visiona.billing.repository.stripe_event import StripeEventRepository
from visiona.billing.service.checkout import CheckoutCompletions
from visiona.billing.service.invoice import Invoices
from visiona.billing.service.payment import Refunds
from visiona.billing.service.subscription import Subscriptions
from visiona.kit.db import Database, UnitOfWork
from visiona.kit.events import StripeEventReceivedV1
from visiona.kit.logging import get_logger

log = get_logger(__name__)

# Each is given the object its event is about (``data.object``) and returns the outcome
# stored on the event row.
Handler = Callable[[StripeObj, UnitOfWork], Awaitable[str]]


async def ingest(
    db: Database, verifier: WebhookVerifier, payload: bytes, signature: str
) -> tuple[str, str, bool]:
    """Verify and store one delivery; returns (event id, type, duplicate)."""
    event = verifier.verify(payload, signature)
    event_id, event_type = event["id"], event["type"]
    handled = is_handled(event_type)
    stored = await stripe_event.store(
        db,
        event_id=event_id,
        event_type=event_type,
        # jsonb has no NUL character; the signature was checked on the raw body. Types
        # billing does not act on are acknowledged, kept (without payload) and closed at once.
        payload=(
            payload.decode().replace("\\u0000", "\\ufffd")
            if handled
            else json.dumps(redacted(event))
        ),
        closed_at=None if handled else datetime.now(UTC),
        outcome=None if handled else IGNORED,
        staged=StripeEventReceivedV1(stripe_event_id=event_id, type=event_type)
        if handled
        else None,
    )
    log.info("stripe.event_received", event_id=event_id, type=event_type, duplicate=not stored)
    return event_id, event_type, not stored


class StripeEventApplier:
    def __init__(self, catalog: Catalog, stripe: StripePort) -> None:
        subscriptions = Subscriptions(catalog, stripe)
        checkouts = CheckoutCompletions(catalog, stripe, subscriptions)
        invoices = Invoices(catalog, stripe, subscriptions)
        refunds = Refunds(stripe)
        self.handlers: Mapping[str, Handler] = {
            "checkout.session.completed": checkouts.completed,
            "checkout.session.async_payment_succeeded": checkouts.completed,
            "invoice.paid": invoices.paid,
            "invoice.payment_failed": invoices.payment_failed,
            "customer.subscription.created": subscriptions.changed,
            "customer.subscription.updated": subscriptions.changed,
            "customer.subscription.deleted": subscriptions.changed,
            "charge.refunded": refunds.charge_refunded,
        }
        if set(self.handlers) != HANDLED_TYPES:
            raise RuntimeError("every Stripe event type billing stages needs its handler")

    async def apply(self, event: StripeEventReceivedV1, uow: UnitOfWork) -> None:
        events = StripeEventRepository(uow.session)
        payload = await events.open_payload(event.stripe_event_id)
        if payload is None:
            return
        handler = self.handlers.get(payload["type"])
        about = field(payload, "data", "object") or {}
        outcome = IGNORED if handler is None else await handler(about, uow)
        # A deferred event stays unprocessed until what it depends on arrives (see
        # payment.grant_paid_credits); everything else is closed for good.
        await events.close(
            event.stripe_event_id,
            outcome,
            deferred=outcome in DEFERRED,
            payload=kept_payload(outcome, payload),
        )
        log.info(
            "stripe.event_applied",
            event_id=event.stripe_event_id,
            type=payload["type"],
            outcome=outcome,
        )
