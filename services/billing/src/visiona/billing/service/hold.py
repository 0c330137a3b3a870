"""Credit holds for jobs: billing's use cases in the credits saga (contract in
``visiona.kit.events``; its event handlers are in ``consumers.py``, the state machine in
``domain/hold.py``).

Every request and outcome runs in the consumer's transaction with its inbox claim (exactly
once per event) and every ledger call is idempotent by the job's key, so a replayed or
duplicated event of another id changes nothing either. A job still waiting for its answer asks
again with a new event (its reconciler): the hold is placed once, and the request answered
again as it stands (reserved, rejected, or expired).
"""

from __future__ import annotations

from structlog.stdlib import BoundLogger

from visiona.billing.domain.catalog import Catalog
from visiona.billing.domain.hold import (
    answer_to_request,
    hold_key,
    hold_terms,
    settlement_events,
)
from visiona.billing.repository.ledger import Ledger
from visiona.billing.service.credit_metrics import count_hold, count_settlement
from visiona.kit.db import UnitOfWork
from visiona.kit.events import JobKind
from visiona.kit.logging import get_logger

log = get_logger(__name__)


def _job_log(job_kind: JobKind, job_id: object) -> BoundLogger:
    """The log of one job's hold: every line names the job."""
    return log.bind(job_kind=job_kind, job_id=str(job_id))


class Holds:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    async def reserve(
        self, uow: UnitOfWork, user_id: str, job_kind: JobKind, job_id: object, units: int
    ) -> None:
        """Hold the job's price, once, and answer the request as the hold stands."""
        terms = hold_terms(self.catalog, job_kind, units)
        result = await Ledger(uow.session).place_hold(
            user_id=user_id,
            key=hold_key(job_kind, job_id),
            job_kind=job_kind,
            job_id=str(job_id),
            amount=terms.amount,
            units=units,
            ttl=terms.ttl,
        )
        count_hold(uow, result)
        _job_log(job_kind, job_id).info(
            "billing.hold", status=result.status, created=result.created, amount=terms.amount
        )
        for event in answer_to_request(result, user_id=user_id, job_kind=job_kind, job_id=job_id):
            uow.emit(event)

    async def settle(
        self,
        uow: UnitOfWork,
        user_id: str,
        job_kind: JobKind,
        job_id: object,
        delivered: int,
        outcome: str,
    ) -> None:
        """The job's outcome: capture the price of what it delivered, release the rest."""
        result = await Ledger(uow.session).settle_hold(
            user_id=user_id, key=hold_key(job_kind, job_id), delivered=delivered, outcome=outcome
        )
        count_settlement(uow, result)
        _job_log(job_kind, job_id).info(
            "billing.settle",
            status=result.status,
            changed=result.changed,
            captured=result.captured,
            released=result.released,
        )
        for event in settlement_events(user_id, result):
            uow.emit(event)
