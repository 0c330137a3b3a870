"""Payments: the credits a verified payment bought, granted once, and taken back when it is
refunded (``charge.refunded``).

Stripe does not order events, so a refund may arrive before the event that grants the
payment's credits: it then stays open (``awaiting_payment_grant``) and the grant stages it
again (:func:`grant_paid_credits`). Both take the payment's lock, so either the grant is
visible to the refund or the refund's outcome to the grant.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from visiona.billing.domain.catalog import Catalog
from visiona.billing.domain.ledger import clawback_due, clawback_key, credits_changed
from visiona.billing.domain.stripe_event import AWAITING_PAYMENT_GRANT
from visiona.billing.providers.stripe import StripeObj, StripePort, object_id
from visiona.billing.repository.ledger import Ledger
from visiona.billing.repository.stripe_event import StripeEventRepository
from visiona.billing.service.credit_metrics import count_grant
from visiona.billing.service.customer import user_for_customer
from visiona.billing.service.subscription import Subscriptions
from visiona.kit.db import UnitOfWork
from visiona.kit.events import StripeEventReceivedV1
from visiona.kit.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class SaleHandlers:
    """What the handlers of a sale's events (a Checkout Session's, a plan invoice's) work
    with: the catalogue it sold from, Stripe to read the sale back, and the subscriptions a
    plan's sale syncs. Credits go through :func:`grant_paid_credits`."""

    catalog: Catalog
    stripe: StripePort
    subscriptions: Subscriptions


def _payment_lock(payment_intent: str) -> str:
    return f"payment:{payment_intent}"


async def grant_paid_credits(
    uow: UnitOfWork,
    *,
    user_id: str,
    key: str,
    kind: str,
    credits: int,
    reference: str,
    payment_intent: str | None,
    metadata: dict[str, Any],
) -> bool:
    """Credit what a payment bought, once per key (``purchase`` or ``plan_grant``); False
    when it was credited before. Refunds of it that arrived first are applied now."""
    result = await Ledger(uow.session).post(
        user_id=user_id,
        key=key,
        kind=kind,
        delta=credits,
        reference=reference,
        payment_intent=payment_intent,
        metadata=metadata,
    )
    if not result.applied:
        return False
    count_grant(uow, kind, credits, result)
    uow.emit(credits_changed(user_id, result.balance, kind))
    await _wake_refunds_awaiting_grant(uow, payment_intent)
    return True


async def _wake_refunds_awaiting_grant(uow: UnitOfWork, payment_intent: str | None) -> None:
    """Stage again the refunds of a payment whose credits were just granted."""
    if not payment_intent:
        return
    events = StripeEventRepository(uow.session)
    # Serialised with refunds of the same payment (see Refunds.charge_refunded): a refund that
    # found no grant has committed its "awaiting" outcome before this looks for it.
    await events.lock_object(_payment_lock(payment_intent))
    for waiting in await events.awaiting(AWAITING_PAYMENT_GRANT, payment_intent):
        uow.emit(StripeEventReceivedV1(stripe_event_id=waiting.id, type=waiting.type))


class Refunds:
    def __init__(self, stripe: StripePort) -> None:
        self.stripe = stripe

    async def charge_refunded(self, snapshot: StripeObj, uow: UnitOfWork) -> str:
        charge_id = snapshot.get("id")
        user_id = await user_for_customer(uow, object_id(snapshot.get("customer")))
        if not charge_id or user_id is None:
            return "not_ours"
        events = StripeEventRepository(uow.session)
        await events.lock_object(charge_id)
        charge = await self.stripe.charge(charge_id)
        payment_intent = object_id(charge.get("payment_intent"))
        amount, refunded = int(charge.get("amount") or 0), int(charge.get("amount_refunded") or 0)
        if not payment_intent or amount <= 0:
            return "not_ours"
        # With the payment's grant one at a time: either the grant is visible here, or this
        # refund's "awaiting" outcome is visible to the grant's wake-up.
        await events.lock_object(_payment_lock(payment_intent))
        ledger = Ledger(uow.session)
        granted, _ = await ledger.granted_for_payment(payment_intent)
        if granted <= 0:
            # The refund overtook the event that grants the payment's credits (or the payment
            # bought none): keep it open; the grant stages it again.
            return AWAITING_PAYMENT_GRANT
        want = clawback_due(
            granted=granted,
            amount=amount,
            refunded=refunded,
            asked=await ledger.clawbacks_asked(payment_intent),
        )
        if want <= 0:
            return "already_clawed_back"
        result = await ledger.claw_back(
            user_id=user_id,
            key=clawback_key(str(charge_id), refunded),
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
        uow.emit(credits_changed(user_id, result.balance, "refund_clawback"))
        return "clawed_back" if not result.uncollected else "clawed_back_partially"
