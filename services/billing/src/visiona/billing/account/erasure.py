"""Erasure: billing's part of ``gateway.account.erasure_requested.v1``, per round.

1. In the consumer's transaction (with its inbox claim): the user's payments are copied,
   anonymised, into ``retained_payments`` (below), and every row that names the user or their
   Stripe customer is deleted: the customer mapping and balance (``accounts``), ledger
   entries, holds, checkout sessions, subscriptions, usage records, the stored Stripe events
   of the user or customer, and billing's published events about the user. From this commit
   on, a Stripe webhook about the customer finds no user (``domain/stripe_event.py``).
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
(default ten years: set the period your jurisdiction requires); a periodic task
(:func:`delete_expired_payments`) deletes records past it. Everything else is deleted.
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import timedelta
from typing import Any

from visiona.billing.config import BillingSettings
from visiona.billing.providers.stripe import StripePort
from visiona.billing.repository.account import AccountRepository, delete_expired_retained_payments
from visiona.billing.repository.erasure import ERASURES, Erasure, ErasureRepository
from visiona.kit.db import Database, UnitOfWork
from visiona.kit.erasure import forget_published_events
from visiona.kit.errors import NotFound
from visiona.kit.events import BillingAccountPurgedV1, ErasureRequestedV1
from visiona.kit.jobs import JobSettings, RowJobs
from visiona.kit.logging import get_logger
from visiona.kit.sweeps import delete_in_batches

log = get_logger(__name__)

DELETE_CUSTOMER = "delete_customer"


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
            # Webhooks of the deletion itself (customer.subscription.deleted…) stored meanwhile.
            late = await AccountRepository(uow.session).purge_stripe_events(
                current.user_id, current.stripe_customer_id
            )
            late += await forget_published_events(uow, current.user_id)
            removed = current.removed + deleted + late
            uow.emit(
                BillingAccountPurgedV1(
                    deletion_id=current.deletion_id, round=current.round, removed=removed
                )
            )
            await ErasureRepository(uow.session).delete(current.id)
            await uow.commit()
        log.info("billing.erasure_answered", round=row.round, removed=removed)


async def erase_account(
    event: ErasureRequestedV1, uow: UnitOfWork, jobs: ErasureJobs, retain_for: timedelta
) -> None:
    user_id = event.user_id
    erasures = ErasureRepository(uow.session)
    # An earlier delivery of this round still waiting on Stripe answers for this one too.
    pending = await erasures.pending(user_id, event.deletion_id, event.round)
    purge = await AccountRepository(uow.session).purge(user_id, retain_for)
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
    await erasures.schedule(
        user_id=user_id,
        deletion_id=event.deletion_id,
        round_=event.round,
        stripe_customer_id=purge.stripe_customer_id,
        removed=removed,
        work=DELETE_CUSTOMER,
    )
    uow.after_commit(jobs.wake)


async def delete_expired_payments(db: Database) -> int:
    """Delete anonymised payment records past their retention period."""
    total = await delete_in_batches(db, delete_expired_retained_payments)
    if total:
        log.info("billing.retained_payments_expired", count=total)
    return total
