"""Stripe webhooks: store verified events by id, then apply them asynchronously.

``ingest`` (called by the gateway over gRPC) verifies the signature on the raw body, stores
the event under its id and, for a type billing acts on, stages an internal
``billing.stripe_event.received.v1`` in the same transaction. ``StripeEventApplier`` consumes
it: one transaction holds the inbox claim, the event row (locked), the effects and the
outbox, so a crash anywhere applies the event exactly once.

Stripe sends events more than once and out of order, so every handler re-fetches the object
whose state it acts on (under a per-object advisory lock) instead of trusting the snapshot,
and every credit movement has a key derived from the Stripe object (``purchase:<cs>``,
``plan_grant:<invoice>``, ``clawback:<charge>:<amount_refunded>``). Credits are granted only
here, from verified events: never from a browser redirect.

Stored payloads name a Stripe customer (and its email), so billing keeps only those it can
attribute to a user, whose erasure then finds them: an event of a type billing does not act
on is stored without its payload, and one that turns out to concern no user of ours (an
unknown customer or session: never ours, or erased since) loses its payload when applied.
That also makes a late event about an erased user's customer (the
``customer.subscription.deleted`` that deleting the customer causes, a redelivery) find
nothing to act on and leave nothing that names them.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from visiona.billing.catalog import Catalog, Pack
from visiona.billing.ledger import Ledger
from visiona.billing.saga import credits_changed
from visiona.billing.stripe_api import StripeObj, StripePort, WebhookVerifier
from visiona.kit.consumer import EventHandler
from visiona.kit.db import Database, UnitOfWork, outbox_values
from visiona.kit.errors import NotFound
from visiona.kit.events import Event, PlanChangedV1, StripeEventReceivedV1
from visiona.kit.logging import get_logger

log = get_logger(__name__)

STRIPE_CONSUMER = "billing.stripe"

# Subscription statuses that keep the plan's entitlements (past_due: Stripe is still retrying).
ENTITLED_STATUSES = ("active", "trialing", "past_due")

# Store the event and, for a type billing acts on, stage it for the applier: one statement in
# autocommit (one round trip, one transaction) on the hot path of every webhook.
_STORE_SQL = (
    "INSERT INTO stripe_events (id, type, payload, processed_at, outcome) "
    "VALUES (%(id)s, %(type)s, %(payload)s::jsonb, %(processed_at)s, %(outcome)s) "
    "ON CONFLICT (id) DO NOTHING RETURNING id"
)
# For a type billing acts on, the same statement stages it for the applier. (Only then: an
# INSERT into the outbox wakes the relay even when it inserts nothing.)
_STORE_AND_STAGE = (
    "WITH stored AS (" + _STORE_SQL + "), staged AS ("
    "INSERT INTO outbox (event_id, routing_key, payload, headers) "
    "SELECT %(event_id)s, %(routing_key)s, %(event_payload)s::jsonb, "
    "%(event_headers)s::jsonb FROM stored RETURNING 1) "
    "SELECT id FROM stored"
)
_LOCK = sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")


async def ingest(
    db: Database, verifier: WebhookVerifier, payload: bytes, signature: str
) -> tuple[str, str, bool]:
    """Verify and store one delivery; returns (event id, type, duplicate)."""
    event = verifier.verify(payload, signature)
    event_id, event_type = event["id"], event["type"]
    handled = event_type in APPLY
    params: dict[str, Any] = {
        "id": event_id,
        "type": event_type,
        # jsonb has no NUL character; the signature was checked on the raw body.
        "payload": payload.decode().replace("\\u0000", "\\ufffd"),
        # Types billing does not act on are acknowledged, kept and closed at once.
        "processed_at": None if handled else datetime.now(UTC),
        "outcome": None if handled else "ignored",
    }
    if handled:
        staged = outbox_values(StripeEventReceivedV1(stripe_event_id=event_id, type=event_type))
        params |= {
            "event_id": staged["event_id"],
            "routing_key": staged["routing_key"],
            "event_payload": json.dumps(staged["payload"]),
            "event_headers": json.dumps(staged["headers"]),
        }
    if not handled:
        params["payload"] = json.dumps(redacted(event))
    async with db.single_statement() as conn:
        cursor = await conn.execute(_STORE_AND_STAGE if handled else _STORE_SQL, params)
        stored = await cursor.fetchone() is not None
    log.info("stripe.event_received", event_id=event_id, type=event_type, duplicate=not stored)
    return event_id, event_type, not stored


def redacted(event: StripeObj) -> StripeObj:
    """What is kept of an event billing does not keep: its id, type and time."""
    return {
        "id": event.get("id"),
        "object": "event",
        "type": event.get("type"),
        "created": event.get("created"),
        "redacted": True,
    }


_RESTAGE = sa.text(
    "UPDATE stripe_events SET staged_at = now() WHERE id IN ("
    "SELECT id FROM stripe_events WHERE processed_at IS NULL "
    "AND staged_at < now() - make_interval(secs => :age) "
    "ORDER BY staged_at LIMIT :limit FOR UPDATE SKIP LOCKED) RETURNING id, type"
)


async def restage_open_events(db: Database, older_than_s: float, limit: int = 100) -> int:
    """Stage again the stored events still open long after they were staged: the applier
    gave up on them (Stripe unreachable past the delivery limit, a dead-lettered message) or
    they wait on a payment. Applying is idempotent, so a duplicate is harmless."""
    async with db.uow() as uow:
        rows = (await uow.session.execute(_RESTAGE, {"age": older_than_s, "limit": limit})).all()
        for row in rows:
            uow.emit(StripeEventReceivedV1(stripe_event_id=row.id, type=row.type))
        await uow.commit()
    if rows:
        log.info("stripe.events_restaged", count=len(rows))
    return len(rows)


@dataclass(frozen=True)
class _Row:
    kind: str
    item_id: str
    credits: int


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _ts(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), UTC) if value else None


def _id(value: Any) -> str | None:
    """An expandable field: an id, or the expanded object's id."""
    if isinstance(value, dict):
        return str(value.get("id")) if value.get("id") else None
    return str(value) if value else None


def invoice_price(invoice: StripeObj) -> str | None:
    """The price of an invoice's first line (2025 shape ``pricing.price_details``, or ``price``)."""
    for line in _get(invoice, "lines", "data") or []:
        price = _get(line, "pricing", "price_details", "price") or _id(line.get("price"))
        if price:
            return str(price)
    return None


class StripeEventApplier:
    def __init__(self, catalog: Catalog, stripe: StripePort) -> None:
        self.catalog = catalog
        self.stripe = stripe

    async def apply(self, event: StripeEventReceivedV1, uow: UnitOfWork) -> None:
        row = (
            await uow.session.execute(
                sa.text(
                    "SELECT payload, processed_at FROM stripe_events WHERE id = :id FOR UPDATE"
                ),
                {"id": event.stripe_event_id},
            )
        ).first()
        if row is None or row.processed_at is not None:
            return
        payload = row.payload if isinstance(row.payload, dict) else json.loads(row.payload)
        handler = APPLY.get(payload["type"])
        outcome = "ignored" if handler is None else await handler(self, payload, uow)
        # A deferred event stays unprocessed until what it depends on arrives (see
        # _wake_deferred); everything else is closed for good.
        await uow.session.execute(
            sa.text(
                "UPDATE stripe_events SET outcome = :o, processed_at = CASE WHEN :deferred "
                "THEN NULL ELSE now() END, payload = COALESCE(CAST(:redacted AS jsonb), "
                "payload) WHERE id = :id"
            ),
            {
                "o": outcome,
                "deferred": outcome in DEFERRED,
                "redacted": json.dumps(redacted(payload)) if outcome in UNATTRIBUTED else None,
                "id": event.stripe_event_id,
            },
        )
        log.info(
            "stripe.event_applied",
            event_id=event.stripe_event_id,
            type=payload["type"],
            outcome=outcome,
        )

    # --- helpers -------------------------------------------------------------------------

    async def _user_for_customer(self, uow: UnitOfWork, customer: str | None) -> str | None:
        """The user who owns a Stripe customer: read as the system, then act as that user."""
        if not customer:
            return None
        await uow.act_as(None, system=True)
        # Or one the user had before (replaced when Stripe lost it): its late events are theirs.
        user = (
            await uow.session.execute(
                sa.text(
                    "SELECT user_id FROM accounts WHERE stripe_customer_id = :c UNION ALL "
                    "SELECT user_id FROM accounts WHERE replaced_stripe_customer_ids @> "
                    "ARRAY[CAST(:c AS text)] LIMIT 1"
                ),
                {"c": customer},
            )
        ).scalar()
        await uow.act_as(user)
        return str(user) if user else None

    async def _customer_is_users(self, uow: UnitOfWork, user_id: str, customer: str | None) -> bool:
        """Whether ``customer`` is the user's: the one billing stored for them (the transaction
        acts as them) or, when it never got to store it, a live Stripe customer created for
        them. An erased user has neither: the mapping is gone and the customer deleted."""
        if not customer:
            return False
        stored = (
            await uow.session.execute(
                sa.text("SELECT stripe_customer_id FROM accounts WHERE user_id = :u"),
                {"u": user_id},
            )
        ).scalar()
        if stored is not None:
            return bool(stored == customer)
        try:
            found = await self.stripe.customer(customer)
        except NotFound:
            return False
        metadata = found.get("metadata") or {}
        return not found.get("deleted") and metadata.get("user_id") == user_id

    async def _sync_subscription(self, uow: UnitOfWork, user_id: str, subscription_id: str) -> str:
        """Store the subscription's current state as Stripe has it now (re-fetched under a
        lock, so an older snapshot never overwrites a newer one)."""
        await uow.session.execute(_LOCK, {"key": subscription_id})
        sub = await self.stripe.subscription(subscription_id)
        item = (_get(sub, "items", "data") or [{}])[0]
        plan = self.catalog.plan_by_price(_id(item.get("price")) or "")
        previous = (
            await uow.session.execute(
                sa.text("SELECT plan_id, status FROM subscriptions WHERE id = :id"),
                {"id": subscription_id},
            )
        ).first()
        await uow.session.execute(
            sa.text(
                "INSERT INTO subscriptions (id, user_id, plan_id, status, cancel_at_period_end, "
                "current_period_end, synced_at) VALUES (:id, :u, :plan, :status, :cape, :end, "
                "now()) ON CONFLICT (id) DO UPDATE SET plan_id = EXCLUDED.plan_id, "
                "status = EXCLUDED.status, cancel_at_period_end = EXCLUDED.cancel_at_period_end, "
                "current_period_end = EXCLUDED.current_period_end, synced_at = now()"
            ),
            {
                "id": subscription_id,
                "u": user_id,
                "plan": plan.id if plan else None,
                "status": sub.get("status") or "unknown",
                "cape": bool(sub.get("cancel_at_period_end")),
                "end": _ts(item.get("current_period_end")),
            },
        )
        status = str(sub.get("status"))
        if previous is None or (previous.plan_id, previous.status) != (
            plan.id if plan else None,
            status,
        ):
            uow.emit(
                PlanChangedV1(user_id=user_id, plan_id=plan.id if plan else None, status=status)
            )
        return f"subscription_{status}"

    async def resync_subscriptions(self, uow: UnitOfWork, user_id: str) -> None:
        """Store again, as Stripe has them now, the user's subscriptions that still entitle
        them (the transaction acts as the user). After their customer turned out missing:
        Stripe ended them with it, or never had them (another mode's keys, a restored backup),
        and then they have ended for billing too."""
        ids = (
            await uow.session.execute(
                sa.text("SELECT id FROM subscriptions WHERE status = ANY(:entitled)"),
                {"entitled": list(ENTITLED_STATUSES)},
            )
        ).scalars()
        for subscription_id in list(ids):
            try:
                await self._sync_subscription(uow, user_id, subscription_id)
            except NotFound:
                ended = (
                    await uow.session.execute(
                        sa.text(
                            "UPDATE subscriptions SET status = 'canceled', "
                            "cancel_at_period_end = false, synced_at = now() WHERE id = :id "
                            "RETURNING plan_id"
                        ),
                        {"id": subscription_id},
                    )
                ).first()
                if ended is not None:
                    uow.emit(
                        PlanChangedV1(user_id=user_id, plan_id=ended.plan_id, status="canceled")
                    )

    async def _wake_deferred(self, uow: UnitOfWork, payment_intent: str | None) -> None:
        """A payment's credits were just granted: refunds of it that arrived first (Stripe does
        not order events) are applied now, by staging them again."""
        if not payment_intent:
            return
        # Serialised with refunds of the same payment (see charge_refunded): a refund that
        # found no grant has committed its "awaiting" outcome before this looks for it.
        await uow.session.execute(_LOCK, {"key": f"payment:{payment_intent}"})
        waiting = await uow.session.execute(
            sa.text(
                "SELECT id, type FROM stripe_events WHERE processed_at IS NULL "
                "AND outcome = 'awaiting_payment_grant' "
                "AND payload->'data'->'object'->>'payment_intent' = :pi"
            ),
            {"pi": payment_intent},
        )
        for row in waiting:
            uow.emit(StripeEventReceivedV1(stripe_event_id=row.id, type=row.type))

    # --- handlers: each returns the outcome stored on the event row ------------------------

    async def checkout_completed(self, payload: StripeObj, uow: UnitOfWork) -> str:
        snapshot = _get(payload, "data", "object") or {}
        session_id = snapshot.get("id")
        user_id = snapshot.get("client_reference_id")
        if not session_id or not user_id:
            return "not_ours"
        await uow.act_as(user_id)
        await uow.session.execute(_LOCK, {"key": session_id})
        stored = (
            await uow.session.execute(
                sa.text(
                    "SELECT kind, item_id, credits FROM checkout_sessions WHERE id = :id "
                    "AND user_id = :u"
                ),
                {"id": session_id, "u": user_id},
            )
        ).first()
        ours = _Row(stored.kind, stored.item_id, stored.credits) if stored is not None else None
        try:
            session = await self.stripe.checkout_session(session_id)
        except NotFound:
            log.warning("stripe.unknown_checkout_session", session_id=session_id)
            return "unknown_session"
        if ours is None:
            # Stripe has the session but we have no row: billing crashed between creating it
            # and recording it. Only our secret key creates sessions in our account, so its
            # metadata (set by create_checkout) says what was bought, priced by our catalogue.
            # Its customer must still be the user's: after an erasure it is not, and a late
            # delivery must not bring the user back.
            if not await self._customer_is_users(uow, user_id, _id(session.get("customer"))):
                log.warning("stripe.checkout_customer_unknown", session_id=session_id)
                return "unknown_customer"
            recovered = self._recover_session(session, user_id)
            if recovered is None:
                log.warning("stripe.unknown_checkout_session", session_id=session_id)
                return "unknown_session"
            await uow.session.execute(
                sa.text(
                    "INSERT INTO checkout_sessions (id, user_id, kind, item_id, credits, amount, "
                    "currency) VALUES (:id, :u, :kind, :item, :credits, :amount, :currency) "
                    "ON CONFLICT (id) DO NOTHING"
                ),
                {"id": session_id, "u": user_id, **recovered},
            )
            ours = _Row(recovered["kind"], recovered["item"], recovered["credits"])
        if session.get("status") != "complete":
            return "not_complete"
        if ours.kind == "plan":
            await uow.session.execute(
                sa.text(
                    "UPDATE checkout_sessions SET status = 'complete', "
                    "completed_at = COALESCE(completed_at, now()) WHERE id = :id"
                ),
                {"id": session_id},
            )
            subscription = _id(session.get("subscription"))
            if subscription is None:
                return "no_subscription"
            # Credits come with the subscription's invoices (invoice.paid), not from here.
            return await self._sync_subscription(uow, user_id, subscription)
        if session.get("payment_status") not in ("paid", "no_payment_required"):
            return "awaiting_payment"
        result = await Ledger(uow.session).post(
            user_id=user_id,
            key=f"purchase:{session_id}",
            kind="purchase",
            delta=int(ours.credits),
            reference=session_id,
            payment_intent=_id(session.get("payment_intent")),
            metadata={"pack": ours.item_id},
        )
        await uow.session.execute(
            sa.text(
                "UPDATE checkout_sessions SET status = 'paid', "
                "completed_at = COALESCE(completed_at, now()) WHERE id = :id"
            ),
            {"id": session_id},
        )
        if result.applied:
            credits_changed(uow, user_id, result.balance, "purchase")
            await self._wake_deferred(uow, _id(session.get("payment_intent")))
            return "credited"
        return "already_credited"

    def _recover_session(self, session: StripeObj, user_id: str) -> dict[str, Any] | None:
        metadata = session.get("metadata") or {}
        if metadata.get("user_id") != user_id or session.get("client_reference_id") != user_id:
            return None
        kind, item_id = metadata.get("kind"), str(metadata.get("item_id") or "")
        item = self.catalog.pack(item_id) if kind == "pack" else self.catalog.plan(item_id)
        if item is None:
            return None
        credits = item.credits if isinstance(item, Pack) else item.monthly_credits
        return {
            "kind": kind,
            "item": item_id,
            "credits": credits,
            "amount": int(session.get("amount_total") or 0),
            "currency": str(session.get("currency") or self.catalog.currency),
        }

    async def invoice_paid(self, payload: StripeObj, uow: UnitOfWork) -> str:
        invoice = _get(payload, "data", "object") or {}
        subscription = _id(_get(invoice, "parent", "subscription_details", "subscription"))
        if not subscription:
            return "not_a_subscription_invoice"
        user_id = await self._user_for_customer(uow, _id(invoice.get("customer")))
        if user_id is None:
            return "unknown_customer"
        outcome = await self._sync_subscription(uow, user_id, subscription)
        if invoice.get("billing_reason") not in ("subscription_create", "subscription_cycle"):
            return outcome
        plan = self.catalog.plan_by_price(invoice_price(invoice) or "")
        if plan is None:
            log.warning("stripe.invoice_unknown_price", invoice=invoice.get("id"))
            return "unknown_price"
        payment_intent = await self.stripe.invoice_payment_intent(str(invoice["id"]))
        result = await Ledger(uow.session).post(
            user_id=user_id,
            key=f"plan_grant:{invoice['id']}",
            kind="plan_grant",
            delta=plan.monthly_credits,
            reference=str(invoice["id"]),
            payment_intent=payment_intent,
            # What was paid, for the records an erasure keeps (retained_payments).
            metadata={
                "plan": plan.id,
                "subscription": subscription,
                "amount_paid": invoice.get("amount_paid"),
                "currency": invoice.get("currency"),
            },
        )
        if result.applied:
            credits_changed(uow, user_id, result.balance, "plan_grant")
            await self._wake_deferred(uow, payment_intent)
            return "granted"
        return "already_granted"

    async def invoice_payment_failed(self, payload: StripeObj, uow: UnitOfWork) -> str:
        invoice = _get(payload, "data", "object") or {}
        subscription = _id(_get(invoice, "parent", "subscription_details", "subscription"))
        user_id = await self._user_for_customer(uow, _id(invoice.get("customer")))
        if not subscription or user_id is None:
            return "not_ours"
        log.info("stripe.invoice_payment_failed", invoice=invoice.get("id"))
        return await self._sync_subscription(uow, user_id, subscription)

    async def subscription_changed(self, payload: StripeObj, uow: UnitOfWork) -> str:
        sub = _get(payload, "data", "object") or {}
        user_id = await self._user_for_customer(uow, _id(sub.get("customer")))
        if not sub.get("id") or user_id is None:
            return "not_ours"
        return await self._sync_subscription(uow, user_id, str(sub["id"]))

    async def charge_refunded(self, payload: StripeObj, uow: UnitOfWork) -> str:
        snapshot = _get(payload, "data", "object") or {}
        charge_id = snapshot.get("id")
        user_id = await self._user_for_customer(uow, _id(snapshot.get("customer")))
        if not charge_id or user_id is None:
            return "not_ours"
        await uow.session.execute(_LOCK, {"key": charge_id})
        charge = await self.stripe.charge(charge_id)
        payment_intent = _id(charge.get("payment_intent"))
        amount, refunded = int(charge.get("amount") or 0), int(charge.get("amount_refunded") or 0)
        if not payment_intent or amount <= 0:
            return "not_ours"
        # With the payment's grant (_wake_deferred) one at a time: either the grant is visible
        # here, or this refund's "awaiting" outcome is visible to the grant's wake-up.
        await uow.session.execute(_LOCK, {"key": f"payment:{payment_intent}"})
        ledger = Ledger(uow.session)
        granted, _ = await ledger.granted_for_payment(payment_intent)
        if granted <= 0:
            # The refund overtook the event that grants the payment's credits (or the payment
            # bought none): keep it open; the grant stages it again.
            return "awaiting_payment_grant"
        # The share of the credits the refunded share of the payment bought, minus what
        # earlier refunds of this payment already asked back.
        target = granted * min(refunded, amount) // amount
        asked = (
            await uow.session.execute(
                sa.text(
                    "SELECT COALESCE(sum((metadata->>'requested')::bigint), 0) FROM "
                    "ledger_entries WHERE kind = 'refund_clawback' AND payment_intent = :pi"
                ),
                {"pi": payment_intent},
            )
        ).scalar_one()
        want = target - int(asked)
        if want <= 0:
            return "already_clawed_back"
        result = await ledger.claw_back(
            user_id=user_id,
            key=f"clawback:{charge_id}:{refunded}",
            amount=want,
            reference=str(charge_id),
            payment_intent=payment_intent,
            metadata={
                "amount_refunded": refunded,
                "amount": amount,
                "currency": charge.get("currency"),
            },
        )
        if result.status != "applied":
            return "already_clawed_back"
        if result.uncollected:
            log.warning("billing.clawback_short", charge=charge_id, uncollected=result.uncollected)
        credits_changed(uow, user_id, result.balance, "refund_clawback")
        return "clawed_back" if not result.uncollected else "clawed_back_partially"

    def handlers(self) -> Mapping[type[Event], EventHandler]:
        return {StripeEventReceivedV1: self.apply}


# Outcomes that leave the event open, to be applied again later.
DEFERRED = frozenset({"awaiting_payment_grant"})
# Outcomes of an event that concerns no user of ours: its payload is not kept.
UNATTRIBUTED = frozenset({"not_ours", "unknown_customer", "unknown_session"})

Handler = Callable[[StripeEventApplier, StripeObj, UnitOfWork], Awaitable[str]]

APPLY: dict[str, Handler] = {
    "checkout.session.completed": StripeEventApplier.checkout_completed,
    "checkout.session.async_payment_succeeded": StripeEventApplier.checkout_completed,
    "invoice.paid": StripeEventApplier.invoice_paid,
    "invoice.payment_failed": StripeEventApplier.invoice_payment_failed,
    "customer.subscription.created": StripeEventApplier.subscription_changed,
    "customer.subscription.updated": StripeEventApplier.subscription_changed,
    "customer.subscription.deleted": StripeEventApplier.subscription_changed,
    "charge.refunded": StripeEventApplier.charge_refunded,
}
