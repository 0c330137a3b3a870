"""Use cases of the billing service behind its gRPC API."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import sqlalchemy as sa

from visiona.billing.catalog import Catalog, Limits
from visiona.billing.config import BillingSettings
from visiona.billing.domain import UsageSummary
from visiona.billing.ledger import Balance, Entry, Ledger, PostResult
from visiona.billing.repository import UsageRepository
from visiona.billing.saga import credits_changed
from visiona.billing.stripe_api import CustomerMissing, StripeObj, StripePort
from visiona.billing.stripe_events import ENTITLED_STATUSES, StripeEventApplier
from visiona.kit.db import Database
from visiona.kit.errors import (
    Conflict,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from visiona.kit.idempotency import RequestKey
from visiona.kit.logging import get_logger

log = get_logger(__name__)

MAX_PAGE = 100
DEFAULT_PAGE = 50
# Customers replaced in one request at most: Stripe's idempotent replay can hand back a
# replacement that was itself deleted since; past that, something else is wrong.
MAX_CUSTOMER_REPLACEMENTS = 2

T = TypeVar("T")


@dataclass(frozen=True)
class CheckoutSession:
    id: str
    url: str
    expires_at: datetime | None


@dataclass(frozen=True)
class Entitlements:
    plan_id: str | None
    status: str
    cancel_at_period_end: bool
    current_period_end: datetime | None
    limits: Limits


class BillingService:
    def __init__(
        self, db: Database, catalog: Catalog, stripe: StripePort, settings: BillingSettings
    ) -> None:
        self.db = db
        self.catalog = catalog
        self.stripe = stripe
        self.settings = settings

    async def usage_summary(self, user_id: str) -> UsageSummary:
        async with self.db.uow(user_id) as uow:
            return await UsageRepository(uow.session).summary()

    async def balance(self, user_id: str) -> Balance:
        async with self.db.uow(user_id) as uow:
            return await Ledger(uow.session).balance(user_id)

    async def ledger_page(
        self, user_id: str, page_size: int, page_token: str
    ) -> tuple[list[Entry], str]:
        if page_size < 0 or page_size > MAX_PAGE:
            raise InvalidArgument(f"page_size must be 1-{MAX_PAGE}", code="page_size_invalid")
        limit = page_size or DEFAULT_PAGE
        before: int | None = None
        if page_token:
            # ASCII digits only: isdigit() alone accepts "¹", which int() refuses (a 500).
            if not (page_token.isascii() and page_token.isdigit()) or len(page_token) > 19:
                raise InvalidArgument("page_token is not valid", code="page_token_invalid")
            before = int(page_token)
        async with self.db.uow(user_id) as uow:
            entries = await Ledger(uow.session).page(user_id, before_id=before, limit=limit + 1)
        more = len(entries) > limit
        entries = entries[:limit]
        return entries, (str(entries[-1].id) if more and entries else "")

    async def entitlements(self, user_id: str) -> Entitlements:
        async with self.db.uow(user_id) as uow:
            row = (
                await uow.session.execute(
                    sa.text(
                        "SELECT plan_id, status, cancel_at_period_end, current_period_end "
                        "FROM subscriptions WHERE user_id = :u "
                        "ORDER BY (status = ANY(:entitled)) DESC, current_period_end DESC "
                        "NULLS LAST LIMIT 1"
                    ),
                    {"u": user_id, "entitled": list(ENTITLED_STATUSES)},
                )
            ).first()
        if row is None:
            return Entitlements(None, "none", False, None, self.catalog.free)
        entitled = row.status in ENTITLED_STATUSES and row.plan_id is not None
        return Entitlements(
            plan_id=row.plan_id,
            status=row.status,
            cancel_at_period_end=row.cancel_at_period_end,
            current_period_end=row.current_period_end,
            limits=self.catalog.limits_for(row.plan_id if entitled else None),
        )

    async def _stored_customer(self, user_id: str) -> str | None:
        async with self.db.uow(user_id) as uow:
            customer = (
                await uow.session.execute(
                    sa.text("SELECT stripe_customer_id FROM accounts WHERE user_id = :u"),
                    {"u": user_id},
                )
            ).scalar()
        return str(customer) if customer else None

    async def _customer(self, user_id: str) -> str:
        """The user's Stripe customer, created once (Stripe idempotency key per user)."""
        existing = await self._stored_customer(user_id)
        if existing:
            return str(existing)
        customer = await self.stripe.create_customer(user_id)
        async with self.db.uow(user_id) as uow:
            stored = (
                await uow.session.execute(
                    sa.text(
                        "INSERT INTO accounts AS a (user_id, stripe_customer_id) VALUES (:u, :c) "
                        "ON CONFLICT (user_id) DO UPDATE SET stripe_customer_id = "
                        "COALESCE(a.stripe_customer_id, EXCLUDED.stripe_customer_id), "
                        "updated_at = now() RETURNING stripe_customer_id"
                    ),
                    {"u": user_id, "c": customer["id"]},
                )
            ).scalar_one()
            await uow.commit()
        return str(stored)

    async def _as_customer(
        self, user_id: str, customer: str, call: Callable[[str], Awaitable[T]]
    ) -> T:
        """``call(customer)``; when Stripe no longer has that customer, the call again with the
        one that replaces it (:meth:`_replace_customer`)."""
        for _ in range(MAX_CUSTOMER_REPLACEMENTS):
            try:
                return await call(customer)
            except CustomerMissing:
                customer = await self._replace_customer(user_id, customer)
        return await call(customer)

    async def _replace_customer(self, user_id: str, missing: str) -> str:
        """A new Stripe customer for the user in place of ``missing``, which Stripe said it
        does not have (deleted in the dashboard, made with the other mode's keys, a restored
        backup). Made once however many requests find it missing at once: Stripe's
        idempotency key follows from the missing id and the stored id is compared and set, so
        every one of them ends with the same customer. The user's subscriptions are synced
        again in the same transaction: Stripe ended them with their customer, or never had
        them, and a plan that still looked active would refuse a new one."""
        try:
            found: StripeObj | None = await self.stripe.customer(missing)
        except NotFound:
            found = None
        if found is not None and not found.get("deleted"):
            log.error("billing.customer_missing_yet_found")
            raise Unavailable("payment provider unavailable", code="stripe_unavailable")
        created = str((await self.stripe.create_customer(user_id, replacing=missing))["id"])
        async with self.db.uow(user_id) as uow:
            stored = (
                await uow.session.execute(
                    sa.text(
                        "UPDATE accounts SET stripe_customer_id = :new, "
                        "replaced_stripe_customer_ids = "
                        "array_append(replaced_stripe_customer_ids, :old), updated_at = now() "
                        "WHERE user_id = :u AND stripe_customer_id = :old "
                        "RETURNING stripe_customer_id"
                    ),
                    {"u": user_id, "new": created, "old": missing},
                )
            ).scalar()
            replaced = stored is not None
            if replaced:
                await StripeEventApplier(self.catalog, self.stripe).resync_subscriptions(
                    uow, user_id
                )
            else:
                # A twin replaced it first (with this very customer, unless Stripe's key
                # had expired in between).
                stored = (
                    await uow.session.execute(
                        sa.text("SELECT stripe_customer_id FROM accounts WHERE user_id = :u"),
                        {"u": user_id},
                    )
                ).scalar()
            await uow.commit()
        if stored != created:
            await self._delete_orphan(created)
        if stored is None:
            # Erased meanwhile.
            raise FailedPrecondition(
                "nothing to manage yet: buy a pack or a plan first", code="no_billing_account"
            )
        log.info("billing.customer_replaced", by_this_request=replaced)
        return str(stored)

    async def _delete_orphan(self, customer: str) -> None:
        try:
            await self.stripe.delete_customer(customer)
        except DomainError as exc:
            log.warning("billing.orphan_customer_kept", code=exc.code)

    async def create_checkout(
        self, user_id: str, kind: str, item_id: str, idempotency: RequestKey | None = None
    ) -> tuple[CheckoutSession, bool]:
        """Open a Stripe Checkout Session for a pack or a plan; with an idempotency key, the
        session that key already opened, if any (ADR 0009). Also says whether the answer is
        that earlier session (a replay)."""
        if idempotency is not None:
            # Before the checks the first one may have changed (its plan, once paid).
            earlier = await self._checkout_with(user_id, idempotency)
            if earlier is not None:
                return earlier, True
        if kind == "pack":
            pack = self.catalog.pack(item_id)
            if pack is None:
                raise NotFound(f"no credit pack {item_id!r}", code="pack_not_found")
            price, credits, amount = pack.stripe_price, pack.credits, pack.unit_amount
        elif kind == "plan":
            plan = self.catalog.plan(item_id)
            if plan is None:
                raise NotFound(f"no plan {item_id!r}", code="plan_not_found")
            current = await self.entitlements(user_id)
            if current.plan_id is not None and current.status in ENTITLED_STATUSES:
                raise Conflict(
                    "you already have a plan; change it in the billing portal",
                    code="plan_already_active",
                )
            price, credits, amount = plan.stripe_price, plan.monthly_credits, plan.unit_amount
        else:
            raise InvalidArgument("kind must be pack or plan", code="checkout_kind_invalid")
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
                "line_items": [{"price": price, "quantity": 1}],
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

        session = await self._as_customer(user_id, await self._customer(user_id), open_session)
        expires = session.get("expires_at")
        opened = CheckoutSession(
            id=str(session["id"]),
            url=str(session["url"]),
            expires_at=datetime.fromtimestamp(int(expires), UTC) if expires else None,
        )
        async with self.db.uow(user_id) as uow:
            recorded = (
                await uow.session.execute(
                    sa.text(
                        "INSERT INTO checkout_sessions (id, user_id, kind, item_id, credits, "
                        "amount, currency, idempotency_key, request_fingerprint, url, expires_at) "
                        "VALUES (:id, :u, :kind, :item, :credits, :amount, :currency, :key, :fp, "
                        ":url, :expires) ON CONFLICT DO NOTHING RETURNING id"
                    ),
                    {
                        "id": opened.id,
                        "u": user_id,
                        "kind": kind,
                        "item": item_id,
                        "credits": credits,
                        "amount": amount,
                        "currency": self.catalog.currency,
                        "key": idempotency.key if idempotency else None,
                        "fp": idempotency.fingerprint if idempotency else None,
                        "url": opened.url,
                        "expires": opened.expires_at,
                    },
                )
            ).first()
            await uow.commit()
        if recorded is None:
            # A twin with the same key recorded the same session first.
            log.info("billing.checkout_replayed", session_id=opened.id)
            return opened, True
        log.info("billing.checkout_created", kind=kind, item_id=item_id, session_id=opened.id)
        return opened, False

    async def _checkout_with(self, user_id: str, key: RequestKey) -> CheckoutSession | None:
        """The session the user's idempotency key opened, if any; refused when that key came
        with a different request."""
        async with self.db.uow(user_id) as uow:
            row = (
                await uow.session.execute(
                    sa.text(
                        "SELECT id, request_fingerprint, url, expires_at FROM checkout_sessions "
                        "WHERE user_id = :u AND idempotency_key = :k"
                    ),
                    {"u": user_id, "k": key.key},
                )
            ).first()
        if row is None:
            return None
        key.check(row.request_fingerprint)
        return CheckoutSession(id=row.id, url=row.url, expires_at=row.expires_at)

    async def create_portal(self, user_id: str) -> str:
        customer = await self._stored_customer(user_id)
        if not customer:
            raise FailedPrecondition(
                "nothing to manage yet: buy a pack or a plan first", code="no_billing_account"
            )
        session = await self._as_customer(
            user_id,
            customer,
            lambda c: self.stripe.create_portal_session(c, self.settings.portal_return_url),
        )
        return str(session["url"])

    async def adjust(
        self, *, user_id: str, delta: int, reason: str, actor: str, key: str
    ) -> PostResult:
        """A manual correction: internal gRPC only, audited on the entry and in the log."""
        if not user_id or not reason.strip() or not actor.strip() or not key:
            raise InvalidArgument(
                "user_id, reason, actor and idempotency_key are required",
                code="adjustment_incomplete",
            )
        if delta == 0:
            raise InvalidArgument("delta must not be zero", code="adjustment_zero")
        async with self.db.uow(user_id) as uow:
            result = await Ledger(uow.session).post(
                user_id=user_id,
                key=f"adjustment:{key}",
                kind="adjustment",
                delta=delta,
                actor=actor,
                reason=reason,
            )
            if result.status == "insufficient":
                raise FailedPrecondition(
                    "the adjustment would take available credits below zero",
                    code="insufficient_credits",
                )
            if result.applied:
                credits_changed(uow, user_id, result.balance, "adjustment")
            await uow.commit()
        log.info(
            "billing.adjustment",
            delta=delta,
            actor=actor,
            applied=result.applied,
        )
        return result
