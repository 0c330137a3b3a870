"""Plan invoices: ``invoice.paid`` grants the plan's monthly credits (on creation and each
cycle), ``invoice.payment_failed`` syncs the subscription Stripe is now retrying."""

from __future__ import annotations

from visiona.billing.domain.ledger import PLAN_GRANT, plan_grant_key
from visiona.billing.providers.stripe import (
    StripeObj,
    field,
    invoice_price,
    object_id,
)
from visiona.billing.service.customer import user_for_customer
from visiona.billing.service.payment import SaleHandlers, grant_paid_credits
from visiona.kit.db import UnitOfWork
from visiona.kit.logging import get_logger

log = get_logger(__name__)


def _subscription_of(invoice: StripeObj) -> str | None:
    return object_id(field(invoice, "parent", "subscription_details", "subscription"))


class Invoices(SaleHandlers):
    """Applies a plan invoice's events; the outcome is stored on the event row."""

    async def paid(self, invoice: StripeObj, uow: UnitOfWork) -> str:
        subscription = _subscription_of(invoice)
        if not subscription:
            return "not_a_subscription_invoice"
        user_id = await user_for_customer(uow, object_id(invoice.get("customer")))
        if user_id is None:
            return "unknown_customer"
        outcome = await self.subscriptions.sync(uow, user_id, subscription)
        if invoice.get("billing_reason") not in ("subscription_create", "subscription_cycle"):
            return outcome
        plan = self.catalog.plan_by_price(invoice_price(invoice) or "")
        if plan is None:
            log.warning("stripe.invoice_unknown_price", invoice=invoice.get("id"))
            return "unknown_price"
        payment_intent = await self.stripe.invoice_payment_intent(str(invoice["id"]))
        granted = await grant_paid_credits(
            uow,
            user_id=user_id,
            key=plan_grant_key(str(invoice["id"])),
            kind=PLAN_GRANT,
            credits=plan.monthly_credits,
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
        return "granted" if granted else "already_granted"

    async def payment_failed(self, invoice: StripeObj, uow: UnitOfWork) -> str:
        subscription = _subscription_of(invoice)
        user_id = await user_for_customer(uow, object_id(invoice.get("customer")))
        if not subscription or user_id is None:
            return "not_ours"
        log.info("stripe.invoice_payment_failed", invoice=invoice.get("id"))
        return await self.subscriptions.sync(uow, user_id, subscription)
