"""The user's Stripe customer: made once, replaced once when Stripe lost it, and found again
from a Stripe object that names it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from visiona.billing.providers.stripe import CustomerMissing, StripeObj, StripePort
from visiona.billing.repository.account import AccountRepository
from visiona.kit.db import Database, UnitOfWork
from visiona.kit.errors import DomainError, FailedPrecondition, NotFound, Unavailable
from visiona.kit.logging import get_logger

if TYPE_CHECKING:
    from visiona.billing.service.subscription import Subscriptions

log = get_logger(__name__)

# Customers replaced in one request at most: Stripe's idempotent replay can hand back a
# replacement that was itself deleted since; past that, something else is wrong.
MAX_CUSTOMER_REPLACEMENTS = 2

T = TypeVar("T")


def no_billing_account() -> FailedPrecondition:
    return FailedPrecondition(
        "nothing to manage yet: buy a pack or a plan first", code="no_billing_account"
    )


async def user_for_customer(uow: UnitOfWork, customer: str | None) -> str | None:
    """The user who owns a Stripe customer: read as the system, then act as that user."""
    if not customer:
        return None
    await uow.act_as(None, system=True)
    user = await AccountRepository(uow.session).user_of_customer(customer)
    await uow.act_as(user)
    return user


async def customer_is_users(
    stripe: StripePort, uow: UnitOfWork, user_id: str, customer: str | None
) -> bool:
    """Whether ``customer`` is the user's: the one billing stored for them (the transaction
    acts as them) or, when it never got to store it, a live Stripe customer created for
    them. An erased user has neither: the mapping is gone and the customer deleted."""
    if not customer:
        return False
    stored = await AccountRepository(uow.session).stripe_customer(user_id)
    if stored is not None:
        return stored == customer
    try:
        found = await stripe.customer(customer)
    except NotFound:
        return False
    metadata = found.get("metadata") or {}
    return not found.get("deleted") and metadata.get("user_id") == user_id


class Customers:
    def __init__(self, db: Database, stripe: StripePort, subscriptions: Subscriptions) -> None:
        self.db = db
        self.stripe = stripe
        self.subscriptions = subscriptions

    async def stored(self, user_id: str) -> str | None:
        async with self.db.uow(user_id) as uow:
            return await AccountRepository(uow.session).stripe_customer(user_id)

    async def ensure(self, user_id: str) -> str:
        """The user's Stripe customer, created once (Stripe idempotency key per user)."""
        existing = await self.stored(user_id)
        if existing:
            return existing
        customer = await self.stripe.create_customer(user_id)
        async with self.db.uow(user_id) as uow:
            stored = await AccountRepository(uow.session).store_customer(user_id, customer["id"])
            await uow.commit()
        return stored

    async def call_as(self, user_id: str, customer: str, call: Callable[[str], Awaitable[T]]) -> T:
        """``call(customer)``; when Stripe no longer has that customer, the call again with the
        one that replaces it (:meth:`replace`)."""
        for _ in range(MAX_CUSTOMER_REPLACEMENTS):
            try:
                return await call(customer)
            except CustomerMissing:
                customer = await self.replace(user_id, customer)
        return await call(customer)

    async def replace(self, user_id: str, missing: str) -> str:
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
            accounts = AccountRepository(uow.session)
            replaced = await accounts.replace_customer(user_id, missing, created)
            if replaced:
                stored: str | None = created
                await self.subscriptions.resync_entitled(uow, user_id)
            else:
                # A twin replaced it first (with this very customer, unless Stripe's key
                # had expired in between).
                stored = await accounts.stripe_customer(user_id)
            await uow.commit()
        if stored != created:
            await self._delete_orphan(created)
        if stored is None:
            raise no_billing_account()  # erased meanwhile
        log.info("billing.customer_replaced", by_this_request=replaced)
        return stored

    async def _delete_orphan(self, customer: str) -> None:
        try:
            await self.stripe.delete_customer(customer)
        except DomainError as exc:
            log.warning("billing.orphan_customer_kept", code=exc.code)

    async def open_portal(self, user_id: str, return_url: str) -> str:
        """A billing portal session for the user's customer; its URL."""
        customer = await self.stored(user_id)
        if not customer:
            raise no_billing_account()
        session = await self.call_as(
            user_id, customer, lambda c: self.stripe.create_portal_session(c, return_url)
        )
        return str(session["url"])
