"""Billing's part in the user's erasure and export sagas (contract in ``visiona.kit.events``).

Erasure, per round (``gateway.account.erasure_requested.v1``):

1. In the consumer's transaction (with its inbox claim): the user's payments are copied,
   anonymised, into ``retained_payments`` (below), and every row that names the user or their
   Stripe customer is deleted: the customer mapping and balance (``accounts``), ledger
   entries, holds, checkout sessions, subscriptions, usage records, the stored Stripe events
   of the user or customer, and billing's published events about the user. From this commit
   on, a Stripe webhook about the customer finds no user (``stripe_events``).
2. With no Stripe customer, the same transaction answers ``billing.account.purged.v1``.
   Otherwise it records the round in ``erasures`` and a worker (:class:`ErasureJobs`) deletes
   the customer at Stripe, which also cancels its subscriptions at once; 404 means it is
   gone already. Then one transaction deletes the Stripe events that arrived meanwhile,
   answers the round and deletes the round's row: nothing names the user afterwards. No
   delivery waits on Stripe, and a crash anywhere repeats a step that is idempotent.

Retention: tax and accounting law obliges a seller to keep the records of its sales (what was
sold, when, for how much, the payment's reference) for a statutory period, and the right to
erasure yields to such an obligation (GDPR Art. 17(3)(b) with Art. 6(1)(c); CCPA
§ 1798.105(d)(8)). So each payment of the user (pack purchase, plan invoice, refund) is kept in
``retained_payments`` with Stripe's id of it and the amount, under a random ``account_ref``
and with no user id, customer id, email or name, for ``BILLING_ACCOUNTING_RETENTION_DAYS``
(default ten years: set the period your jurisdiction requires); a periodic task deletes
records past it. Everything else is deleted.

Export (``gateway.export.requested.v1``): the user's account (balance, Stripe customer id),
subscriptions, ledger, holds, checkout sessions, payments and usage records as JSON under
``exports/<export_id>/billing/``, answered with ``billing.account.exported.v1``.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from visiona.billing.config import BillingSettings
from visiona.billing.repository import (
    ERASURES,
    AccountRepository,
    Erasure,
    delete_expired_retained_payments,
)
from visiona.billing.stripe_api import StripePort
from visiona.kit.consumer import EventHandler
from visiona.kit.db import Database, UnitOfWork
from visiona.kit.erasure import ExportPart, forget_published_events
from visiona.kit.errors import NotFound
from visiona.kit.events import (
    BillingAccountExportedV1,
    BillingAccountPurgedV1,
    ErasureRequestedV1,
    Event,
    ExportRequestedV1,
)
from visiona.kit.jobs import JobSettings, RowJobs
from visiona.kit.logging import get_logger
from visiona.kit.storage import Storage

log = get_logger(__name__)

ACCOUNT_CONSUMER = "billing.account"
DELETE_CUSTOMER = "delete_customer"

# What an export holds: (file name, table, order).
_EXPORTED_TABLES = (
    ("account", "accounts", "user_id"),
    ("subscriptions", "subscriptions", "synced_at"),
    ("ledger", "ledger_entries", "id"),
    ("holds", "holds", "created_at"),
    ("checkout_sessions", "checkout_sessions", "created_at"),
    ("usage", "usage_records", "occurred_at"),
)


class ErasureJobs(RowJobs[Erasure]):
    """Deletes an erased user's Stripe customer, then answers the round."""

    table = "erasures"
    name = "billing-erasure"

    def __init__(self, db: Database, stripe: StripePort, settings: BillingSettings) -> None:
        super().__init__(
            db,
            JobSettings(
                poll_interval_s=settings.erasure_poll_interval_s,
                lease_s=settings.erasure_lease_s,
            ),
        )
        self.stripe = stripe

    async def load(self, uow: UnitOfWork, row_id: uuid.UUID, *, lock: bool) -> Erasure | None:
        return await ERASURES.load(uow, row_id, lock=lock)

    async def save(self, uow: UnitOfWork, row: Erasure, **changes: Any) -> None:
        await ERASURES.save(uow, row, **changes)

    async def step_delete_customer(self, row: Erasure) -> None:
        deleted = 0
        if row.stripe_customer_id:
            # NotFound: an earlier attempt (or someone at Stripe) deleted it.
            with contextlib.suppress(NotFound):
                await self.stripe.delete_customer(row.stripe_customer_id)
            # It existed when the round began: this round removed it, whichever attempt did.
            deleted = 1
        async with self.locked(row) as (uow, current):
            repo = AccountRepository(uow.session)
            # Webhooks of the deletion itself (customer.subscription.deleted…) stored meanwhile.
            late = await repo.purge_stripe_events(current.user_id, current.stripe_customer_id)
            late += await forget_published_events(uow, current.user_id)
            removed = current.removed + deleted + late
            uow.emit(
                BillingAccountPurgedV1(
                    deletion_id=current.deletion_id, round=current.round, removed=removed
                )
            )
            await repo.delete_erasure(current.id)
            await uow.commit()
        log.info("billing.erasure_answered", round=row.round, removed=removed)


class AccountData:
    """The consumer of both sagas."""

    def __init__(
        self,
        storage: Storage | None,
        jobs: ErasureJobs,
        settings: BillingSettings,
    ) -> None:
        self.storage = storage
        self.jobs = jobs
        self.retain_for = timedelta(days=settings.accounting_retention_days)

    async def erasure_requested(self, event: ErasureRequestedV1, uow: UnitOfWork) -> None:
        user_id = event.user_id
        repo = AccountRepository(uow.session)
        # An earlier delivery of this round still waiting on Stripe answers for this one too.
        pending = await repo.pending_erasure(user_id, event.deletion_id, event.round)
        purge = await repo.purge(user_id, self.retain_for)
        removed = purge.removed + await forget_published_events(uow, user_id)
        log.info(
            "billing.erasure_purged",
            round=event.round,
            removed=removed,
            retained=purge.retained,
            stripe_customer=purge.stripe_customer_id is not None,
        )
        if pending is None and purge.stripe_customer_id is None:
            uow.emit(
                BillingAccountPurgedV1(
                    deletion_id=event.deletion_id, round=event.round, removed=removed
                )
            )
            return
        await repo.schedule_erasure(
            user_id=user_id,
            deletion_id=event.deletion_id,
            round_=event.round,
            stripe_customer_id=purge.stripe_customer_id,
            removed=removed,
            work=DELETE_CUSTOMER,
        )
        uow.after_commit(self.jobs.wake)

    async def export_requested(self, event: ExportRequestedV1, uow: UnitOfWork) -> None:
        if self.storage is None:
            raise RuntimeError("billing has no S3 storage configured (BILLING_S3_ENDPOINT)")
        repo = AccountRepository(uow.session)
        part = ExportPart(self.storage, event.export_id, "billing")
        for name, table, order in _EXPORTED_TABLES:
            await part.add_records(name, await repo.records(table, event.user_id, order))
        await part.add_records("payments", await repo.payments(event.user_id))
        uow.emit(part.done(BillingAccountExportedV1, event.user_id))
        log.info("billing.export_written", objects=part.objects, bytes=part.bytes)

    def handlers(self) -> Mapping[type[Event], EventHandler]:
        return {
            ErasureRequestedV1: self.erasure_requested,
            ExportRequestedV1: self.export_requested,
        }


async def delete_expired_payments(db: Database) -> int:
    """Delete anonymised payment records past their retention period."""
    total = 0
    while True:
        async with db.uow() as uow:
            deleted = await delete_expired_retained_payments(uow.session)
            await uow.commit()
        total += deleted
        if deleted == 0:
            break
    if total:
        log.info("billing.retained_payments_expired", count=total)
    return total
