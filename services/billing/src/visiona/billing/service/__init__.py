"""Use cases of the billing service, one module per aggregate; :class:`BillingService` is
what the gRPC API calls.

- :mod:`.hold`: credit holds for jobs (the credits saga; its handlers in ``consumers.py``)
- :mod:`.checkout`: opening a Checkout Session, and applying its completion
- :mod:`.customer`: the user's Stripe customer, and the billing portal
- :mod:`.subscription`: plan subscriptions and entitlements
- :mod:`.invoice`: plan invoices; :mod:`.payment`: granting what a payment bought, refunds
- :mod:`.stripe_events`: webhook ingest, and the applier that dispatches to the handlers
"""

from __future__ import annotations

from visiona.billing.config import BillingSettings
from visiona.billing.domain.catalog import Catalog
from visiona.billing.domain.checkout import CheckoutSession
from visiona.billing.domain.ledger import (
    ADJUSTMENT,
    INSUFFICIENT,
    Balance,
    Entry,
    PostResult,
    adjustment_key,
    credits_changed,
)
from visiona.billing.domain.subscription import Entitlements
from visiona.billing.domain.usage import UsageSummary
from visiona.billing.providers.stripe import StripePort
from visiona.billing.repository.ledger import Ledger
from visiona.billing.repository.usage import UsageRepository
from visiona.billing.service.checkout import Checkouts
from visiona.billing.service.credit_metrics import count_grant
from visiona.billing.service.customer import Customers
from visiona.billing.service.subscription import Subscriptions, current_entitlements
from visiona.kit.db import Database
from visiona.kit.errors import FailedPrecondition, InvalidArgument
from visiona.kit.idempotency import RequestKey
from visiona.kit.logging import get_logger
from visiona.kit.paging import page_size

log = get_logger(__name__)


class BillingService:
    def __init__(
        self, db: Database, catalog: Catalog, stripe: StripePort, settings: BillingSettings
    ) -> None:
        self.db = db
        self.catalog = catalog
        self.stripe = stripe
        self.settings = settings
        self.customers = Customers(db, stripe, Subscriptions(catalog, stripe))
        self.checkouts = Checkouts(db, catalog, stripe, settings, self.customers)

    async def usage_summary(self, user_id: str) -> UsageSummary:
        async with self.db.uow(user_id) as uow:
            return await UsageRepository(uow.session).summary()

    async def balance(self, user_id: str) -> Balance:
        async with self.db.uow(user_id) as uow:
            return await Ledger(uow.session).balance(user_id)

    async def ledger_page(
        self, user_id: str, requested_size: int, page_token: str
    ) -> tuple[list[Entry], str]:
        limit = page_size(requested_size)
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
        return await current_entitlements(self.db, self.catalog, user_id)

    async def create_checkout(
        self, user_id: str, kind: str, item_id: str, idempotency: RequestKey | None = None
    ) -> tuple[CheckoutSession, bool]:
        return await self.checkouts.create(user_id, kind, item_id, idempotency)

    async def create_portal(self, user_id: str) -> str:
        return await self.customers.open_portal(user_id, self.settings.portal_return_url)

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
                key=adjustment_key(key),
                kind=ADJUSTMENT,
                delta=delta,
                actor=actor,
                reason=reason,
            )
            if result.status == INSUFFICIENT:
                raise FailedPrecondition(
                    "the adjustment would take available credits below zero",
                    code="insufficient_credits",
                )
            if result.applied:
                uow.emit(credits_changed(user_id, result.balance, "adjustment"))
                count_grant(uow, ADJUSTMENT, delta, result)
            await uow.commit()
        log.info(
            "billing.adjustment",
            delta=delta,
            actor=actor,
            applied=result.applied,
        )
        return result
