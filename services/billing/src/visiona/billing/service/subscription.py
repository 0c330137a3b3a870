"""Plan subscriptions: kept as Stripe has them, and what they entitle their user to."""

from __future__ import annotations

from visiona.billing.domain.catalog import Catalog
from visiona.billing.domain.subscription import Entitlements, entitlements, plan_change
from visiona.billing.providers.stripe import StripeObj, StripePort, field, object_id, timestamp
from visiona.billing.repository.stripe_event import StripeEventRepository
from visiona.billing.repository.subscription import SubscriptionRepository
from visiona.billing.service.customer import user_for_customer
from visiona.kit.db import Database, UnitOfWork
from visiona.kit.errors import NotFound
from visiona.kit.events import PlanChangedV1


async def current_entitlements(db: Database, catalog: Catalog, user_id: str) -> Entitlements:
    async with db.uow(user_id) as uow:
        current = await SubscriptionRepository(uow.session).current(user_id)
    return entitlements(current, catalog)


class Subscriptions:
    def __init__(self, catalog: Catalog, stripe: StripePort) -> None:
        self.catalog = catalog
        self.stripe = stripe

    async def sync(self, uow: UnitOfWork, user_id: str, subscription_id: str) -> str:
        """Store the subscription's current state as Stripe has it now (re-fetched under a
        lock, so an older snapshot never overwrites a newer one)."""
        await StripeEventRepository(uow.session).lock_object(subscription_id)
        sub = await self.stripe.subscription(subscription_id)
        item = (field(sub, "items", "data") or [{}])[0]
        plan = self.catalog.plan_by_price(object_id(item.get("price")) or "")
        plan_id = plan.id if plan else None
        repo = SubscriptionRepository(uow.session)
        before = await repo.plan_and_status(subscription_id)
        await repo.store(
            subscription_id=subscription_id,
            user_id=user_id,
            plan_id=plan_id,
            status=sub.get("status") or "unknown",
            cancel_at_period_end=bool(sub.get("cancel_at_period_end")),
            current_period_end=timestamp(item.get("current_period_end")),
        )
        status = str(sub.get("status"))
        changed = plan_change(user_id, before, plan_id, status)
        if changed is not None:
            uow.emit(changed)
        return f"subscription_{status}"

    async def resync_entitled(self, uow: UnitOfWork, user_id: str) -> None:
        """Store again, as Stripe has them now, the user's subscriptions that still entitle
        them (the transaction acts as the user). After their customer turned out missing:
        Stripe ended them with it, or never had them (another mode's keys, a restored backup),
        and then they have ended for billing too."""
        repo = SubscriptionRepository(uow.session)
        for subscription_id in await repo.entitled_ids():
            try:
                await self.sync(uow, user_id, subscription_id)
            except NotFound:
                stored, plan_id = await repo.cancel(subscription_id)
                if stored:
                    uow.emit(PlanChangedV1(user_id=user_id, plan_id=plan_id, status="canceled"))

    async def changed(self, sub: StripeObj, uow: UnitOfWork) -> str:
        """``customer.subscription.created|updated|deleted``."""
        user_id = await user_for_customer(uow, object_id(sub.get("customer")))
        if not sub.get("id") or user_id is None:
            return "not_ours"
        return await self.sync(uow, user_id, str(sub["id"]))
