"""Checkout: opening a Stripe Checkout Session for a pack or a plan, and applying its
completion (``checkout.session.completed``, ``…async_payment_succeeded``).

Credits are granted only from a verified event, never from the browser's redirect: a pack's
when its session is paid, a plan's with each of its invoices (``service/invoice.py``); both
through ``service/payment.py``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from visiona.billing.config import BillingSettings
from visiona.billing.domain.catalog import Catalog
from visiona.billing.domain.checkout import (
    CheckoutSession,
    SoldItem,
    checkout_item,
    recover_session,
)
from visiona.billing.domain.ledger import PURCHASE, purchase_key
from visiona.billing.providers.stripe import StripeObj, StripePort, object_id
from visiona.billing.repository.checkout import CheckoutRepository
from visiona.billing.repository.stripe_event import StripeEventRepository
from visiona.billing.service.customer import Customers, customer_is_users
from visiona.billing.service.payment import SaleHandlers, grant_paid_credits
from visiona.billing.service.subscription import current_entitlements
from visiona.kit.db import Database, UnitOfWork
from visiona.kit.errors import Conflict, NotFound
from visiona.kit.idempotency import RequestKey
from visiona.kit.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class Checkouts:
    db: Database
    catalog: Catalog
    stripe: StripePort
    settings: BillingSettings
    customers: Customers

    async def create(
        self, user_id: str, kind: str, item_id: str, idempotency: RequestKey | None = None
    ) -> tuple[CheckoutSession, bool]:
        """Open a Stripe Checkout Session for a pack or a plan; with an idempotency key, the
        session that key already opened, if any (ADR 0009). Also says whether the answer is
        that earlier session (a replay)."""
        if idempotency is not None:
            # Before the checks the first one may have changed (its plan, once paid).
            earlier = await self._opened_with(user_id, idempotency)
            if earlier is not None:
                return earlier, True
        item = checkout_item(self.catalog, kind, item_id)
        if kind == "plan" and (await current_entitlements(self.db, self.catalog, user_id)).has_plan:
            raise Conflict(
                "you already have a plan; change it in the billing portal",
                code="plan_already_active",
            )
        metadata = {"user_id": user_id, "kind": kind, "item_id": item_id}
        # With the caller's key, Stripe's key follows from it: a first attempt that reached
        # Stripe but was never recorded here (a crash, a lost answer), or a twin in flight,
        # gets the very session Stripe made for it (Stripe keeps keys for 24 hours). The
        # customer is part of it: the attempt after a customer was replaced is another request.
        stripe_key = idempotency.key if idempotency is not None else str(uuid.uuid4())

        async def open_session(customer: str) -> StripeObj:
            params: dict[str, object] = {
                "mode": "payment" if kind == "pack" else "subscription",
                "customer": customer,
                "client_reference_id": user_id,
                "line_items": [{"price": item.stripe_price, "quantity": 1}],
                "success_url": self.settings.checkout_success_url,
                "cancel_url": self.settings.checkout_cancel_url,
                "metadata": metadata,
            }
            if kind == "pack":
                params["payment_intent_data"] = {"metadata": metadata}
            else:
                params["subscription_data"] = {"metadata": metadata}
            return await self.stripe.create_checkout_session(
                params, key=f"visiona-checkout-{stripe_key}-{customer}"
            )

        customer = await self.customers.ensure(user_id)
        session = await self.customers.call_as(user_id, customer, open_session)
        expires = session.get("expires_at")
        opened = CheckoutSession(
            id=str(session["id"]),
            url=str(session["url"]),
            expires_at=datetime.fromtimestamp(int(expires), UTC) if expires else None,
        )
        async with self.db.uow(user_id) as uow:
            recorded = await CheckoutRepository(uow.session).record(
                session_id=opened.id,
                user_id=user_id,
                item=item,
                currency=self.catalog.currency,
                idempotency_key=idempotency.key if idempotency else None,
                request_fingerprint=idempotency.fingerprint if idempotency else None,
                url=opened.url,
                expires_at=opened.expires_at,
            )
            await uow.commit()
        if not recorded:
            # A twin with the same key recorded the same session first.
            log.info("billing.checkout_replayed", session_id=opened.id)
            return opened, True
        log.info("billing.checkout_created", kind=kind, item_id=item_id, session_id=opened.id)
        return opened, False

    async def _opened_with(self, user_id: str, key: RequestKey) -> CheckoutSession | None:
        """The session the user's idempotency key opened, if any; refused when that key came
        with a different request."""
        async with self.db.uow(user_id) as uow:
            row = await CheckoutRepository(uow.session).opened_with(user_id, key.key)
        if row is None:
            return None
        key.check(row.request_fingerprint)
        return CheckoutSession(id=row.id, url=row.url, expires_at=row.expires_at)


class CheckoutCompletions(SaleHandlers):
    """Applies a completed Checkout Session; the outcome is stored on the event row."""

    async def completed(self, snapshot: StripeObj, uow: UnitOfWork) -> str:
        session_id = snapshot.get("id")
        user_id = snapshot.get("client_reference_id")
        if not session_id or not user_id:
            return "not_ours"
        await uow.act_as(user_id)
        await StripeEventRepository(uow.session).lock_object(session_id)
        checkouts = CheckoutRepository(uow.session)
        ours = await checkouts.sold(session_id, user_id)
        try:
            session = await self.stripe.checkout_session(session_id)
        except NotFound:
            log.warning("stripe.unknown_checkout_session", session_id=session_id)
            return "unknown_session"
        if ours is None:
            # Stripe has the session but we have no row: billing crashed between creating it
            # and recording it (see recover_session). Its customer must still be the user's:
            # after an erasure it is not, and a late delivery must not bring the user back.
            if not await customer_is_users(
                self.stripe, uow, user_id, object_id(session.get("customer"))
            ):
                log.warning("stripe.checkout_customer_unknown", session_id=session_id)
                return "unknown_customer"
            recovered = recover_session(self.catalog, session, user_id)
            if recovered is None:
                log.warning("stripe.unknown_checkout_session", session_id=session_id)
                return "unknown_session"
            await checkouts.record_recovered(session_id, user_id, recovered)
            ours = SoldItem(recovered.kind, recovered.item_id, recovered.credits)
        if session.get("status") != "complete":
            return "not_complete"
        if ours.kind == "plan":
            await checkouts.complete(session_id, "complete")
            subscription = object_id(session.get("subscription"))
            if subscription is None:
                return "no_subscription"
            # Credits come with the subscription's invoices (invoice.paid), not from here.
            return await self.subscriptions.sync(uow, user_id, subscription)
        if session.get("payment_status") not in ("paid", "no_payment_required"):
            return "awaiting_payment"
        granted = await grant_paid_credits(
            uow,
            user_id=user_id,
            key=purchase_key(session_id),
            kind=PURCHASE,
            credits=int(ours.credits),
            reference=session_id,
            payment_intent=object_id(session.get("payment_intent")),
            metadata={"pack": ours.item_id},
        )
        await checkouts.complete(session_id, "paid")
        return "credited" if granted else "already_credited"
