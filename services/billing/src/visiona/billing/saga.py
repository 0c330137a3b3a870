"""The credit-hold saga, billing's side (contract in ``visiona.kit.events``).

Every handler runs in the consumer's transaction with its inbox claim (exactly once per event)
and every ledger call is idempotent by the job's key, so a replayed or duplicated event of
another id changes nothing either. A job still waiting for its answer asks again with a new
event (its reconciler): the hold is placed once, and the request answered again as it stands
(reserved, rejected, or expired).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from visiona.billing.catalog import Catalog
from visiona.billing.ledger import Balance, Ledger
from visiona.kit.consumer import EventHandler
from visiona.kit.db import Database, UnitOfWork
from visiona.kit.events import (
    CreditsChangedV1,
    CreditsRejectedV1,
    CreditsReservedV1,
    Event,
    GenerationCanceledV1,
    GenerationFailedV1,
    GenerationRequestedV1,
    GenerationSucceededV1,
    HoldExpiredV1,
    JobKind,
    ModelReadyV1,
    TrainingCanceledV1,
    TrainingFailedV1,
    TrainingRequestedV1,
)
from visiona.kit.logging import get_logger

log = get_logger(__name__)

HOLDS_CONSUMER = "billing.holds"


def hold_key(job_kind: str, job_id: object) -> str:
    return f"{job_kind}:{job_id}"


def credits_changed(uow: UnitOfWork, user_id: str, balance: Balance, cause: str) -> None:
    uow.emit(
        CreditsChangedV1(
            user_id=user_id,
            balance=balance.balance,
            held=balance.held,
            available=balance.available,
            cause=cause,
        )
    )


class HoldSaga:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    async def _reserve(
        self, uow: UnitOfWork, user_id: str, job_kind: JobKind, job_id: object, units: int
    ) -> None:
        unit_price = (
            self.catalog.prices.training
            if job_kind == "training"
            else self.catalog.prices.generation_image
        )
        ttl_s = getattr(self.catalog.hold_ttl_s, job_kind)
        amount = unit_price * units
        result = await Ledger(uow.session).place_hold(
            user_id=user_id,
            key=hold_key(job_kind, job_id),
            job_kind=job_kind,
            job_id=str(job_id),
            amount=amount,
            units=units,
            ttl=timedelta(seconds=ttl_s),
        )
        log.info(
            "billing.hold",
            job_kind=job_kind,
            job_id=str(job_id),
            status=result.status,
            created=result.created,
            amount=amount,
        )
        if result.status == "open":
            uow.emit(
                CreditsReservedV1(
                    user_id=user_id,
                    job_kind=job_kind,
                    job_id=job_id,  # type: ignore[arg-type]
                    hold_id=result.hold_id,
                    credits=result.amount,
                    expires_at=result.expires_at,
                )
            )
            if result.created:
                credits_changed(uow, user_id, result.balance, "hold")
        elif result.status == "rejected":
            uow.emit(
                CreditsRejectedV1(
                    user_id=user_id,
                    job_kind=job_kind,
                    job_id=job_id,  # type: ignore[arg-type]
                    reason="insufficient_credits",
                    required=result.amount,
                    available=result.balance.available,
                )
            )
        elif result.status == "expired":
            # The job asks again because it never heard of its hold's expiry: tell it again.
            uow.emit(
                HoldExpiredV1(
                    user_id=user_id,
                    job_kind=job_kind,
                    job_id=job_id,  # type: ignore[arg-type]
                    hold_id=result.hold_id,
                    credits=result.amount,
                )
            )
        # settled: the job's outcome arrived, so it is over; a late duplicate gets no answer.

    async def _settle(
        self,
        uow: UnitOfWork,
        user_id: str,
        job_kind: JobKind,
        job_id: object,
        delivered: int,
        outcome: str,
    ) -> None:
        result = await Ledger(uow.session).settle_hold(
            user_id=user_id, key=hold_key(job_kind, job_id), delivered=delivered, outcome=outcome
        )
        log.info(
            "billing.settle",
            job_kind=job_kind,
            job_id=str(job_id),
            status=result.status,
            changed=result.changed,
            captured=result.captured,
            released=result.released,
        )
        if result.changed and result.balance is not None:
            credits_changed(uow, user_id, result.balance, "settle")

    async def training_requested(self, event: TrainingRequestedV1, uow: UnitOfWork) -> None:
        await self._reserve(uow, event.user_id, "training", event.training_id, 1)

    async def generation_requested(self, event: GenerationRequestedV1, uow: UnitOfWork) -> None:
        await self._reserve(
            uow, event.user_id, "generation", event.generation_id, event.num_outputs
        )

    async def model_ready(self, event: ModelReadyV1, uow: UnitOfWork) -> None:
        await self._settle(uow, event.user_id, "training", event.training_id, 1, "succeeded")

    async def training_failed(self, event: TrainingFailedV1, uow: UnitOfWork) -> None:
        await self._settle(uow, event.user_id, "training", event.training_id, 0, "failed")

    async def training_canceled(self, event: TrainingCanceledV1, uow: UnitOfWork) -> None:
        await self._settle(uow, event.user_id, "training", event.training_id, 0, "canceled")

    async def generation_succeeded(self, event: GenerationSucceededV1, uow: UnitOfWork) -> None:
        await self._settle(
            uow, event.user_id, "generation", event.generation_id, event.delivered, "succeeded"
        )

    async def generation_failed(self, event: GenerationFailedV1, uow: UnitOfWork) -> None:
        await self._settle(
            uow, event.user_id, "generation", event.generation_id, event.delivered, "failed"
        )

    async def generation_canceled(self, event: GenerationCanceledV1, uow: UnitOfWork) -> None:
        await self._settle(
            uow, event.user_id, "generation", event.generation_id, event.delivered, "canceled"
        )

    def handlers(self) -> Mapping[type[Event], EventHandler]:
        return {
            TrainingRequestedV1: self.training_requested,
            GenerationRequestedV1: self.generation_requested,
            ModelReadyV1: self.model_ready,
            TrainingFailedV1: self.training_failed,
            TrainingCanceledV1: self.training_canceled,
            GenerationSucceededV1: self.generation_succeeded,
            GenerationFailedV1: self.generation_failed,
            GenerationCanceledV1: self.generation_canceled,
        }


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
            uow.emit(
                HoldExpiredV1(
                    user_id=hold.user_id,
                    job_kind=hold.job_kind,  # type: ignore[arg-type]
                    job_id=hold.job_id,  # type: ignore[arg-type]
                    hold_id=hold.id,
                    credits=hold.amount,
                )
            )
            credits_changed(uow, hold.user_id, result.balance, "hold_expired")
            await uow.commit()
            expired += 1
    if expired:
        log.info("billing.holds_expired", count=expired)
    return expired
