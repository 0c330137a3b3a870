"""A Stripe event billing stored: which types it acts on, and what it keeps of a payload.

Stored payloads name a Stripe customer (and its email), so billing keeps only those it can
attribute to a user, whose erasure then finds them: an event of a type billing does not act
on is stored without its payload, and one that turns out to concern no user of ours (an
unknown customer or session: never ours, or erased since) loses its payload when applied.
That also makes a late event about an erased user's customer (the
``customer.subscription.deleted`` that deleting the customer causes, a redelivery) find
nothing to act on and leave nothing that names them.
"""

from __future__ import annotations

from typing import Any

HANDLED_TYPES = frozenset(
    {
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
        "invoice.paid",
        "invoice.payment_failed",
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "charge.refunded",
    }
)

# The outcome of an event billing does not act on.
IGNORED = "ignored"
# A refund that arrived before the payment's grant (Stripe does not order events): it stays
# open until the grant stages it again.
AWAITING_PAYMENT_GRANT = "awaiting_payment_grant"
# Outcomes that leave the event open, to be applied again later.
DEFERRED = frozenset({AWAITING_PAYMENT_GRANT})
# Outcomes of an event that concerns no user of ours: its payload is not kept.
UNATTRIBUTED = frozenset({"not_ours", "unknown_customer", "unknown_session"})


def is_handled(event_type: str) -> bool:
    return event_type in HANDLED_TYPES


def redacted(event: dict[str, Any]) -> dict[str, Any]:
    """What is kept of an event billing does not keep: its id, type and time."""
    return {
        "id": event.get("id"),
        "object": "event",
        "type": event.get("type"),
        "created": event.get("created"),
        "redacted": True,
    }


def kept_payload(outcome: str, payload: dict[str, Any]) -> dict[str, Any] | None:
    """The payload to store instead once applied with ``outcome`` (None: keep it as is)."""
    return redacted(payload) if outcome in UNATTRIBUTED else None
