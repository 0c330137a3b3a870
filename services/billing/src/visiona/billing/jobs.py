"""Billing's sweeps, run periodically on every replica (each is safe to run on several at
once): holds past their expiry are released, and stored Stripe events left open are staged
again. The erasure worker and the retained-payments expiry are in ``account/``.
"""

from __future__ import annotations

from visiona.billing.domain.hold import expiry_events
from visiona.billing.repository.ledger import Ledger
from visiona.billing.repository.stripe_event import StripeEventRepository
from visiona.billing.service.credit_metrics import count_settlement
from visiona.kit.db import Database
from visiona.kit.events import StripeEventReceivedV1
from visiona.kit.logging import get_logger

log = get_logger(__name__)


async def expire_due_holds(db: Database, batch: int) -> int:
    """Release every open hold past its expiry; safe to run on several replicas at once."""
    async with db.uow(system=True) as uow:
        due = await Ledger(uow.session).due_holds(batch)
    expired = 0
    for hold in due:
        async with db.uow(hold.user_id) as uow:
            result = await Ledger(uow.session).settle_hold(
                user_id=hold.user_id, key=hold.key, delivered=0, outcome="expired", final="expired"
            )
            if not result.changed or result.balance is None:
                continue  # another replica, or the outcome, got there first
            count_settlement(uow, result)
            for event in expiry_events(hold, result.balance):
                uow.emit(event)
            await uow.commit()
            expired += 1
    if expired:
        log.info("billing.holds_expired", count=expired)
    return expired


async def restage_open_events(db: Database, older_than_s: float, limit: int = 100) -> int:
    """Stage again the stored events still open long after they were staged: the applier
    gave up on them (Stripe unreachable past the delivery limit, a dead-lettered message) or
    they wait on a payment. Applying is idempotent, so a duplicate is harmless."""
    async with db.uow() as uow:
        events = await StripeEventRepository(uow.session).restage(older_than_s, limit)
        for event in events:
            uow.emit(StripeEventReceivedV1(stripe_event_id=event.id, type=event.type))
        await uow.commit()
    if events:
        log.info("stripe.events_restaged", count=len(events))
    return len(events)
