"""A paid job's side of billing's credit-hold saga, one implementation for every paid job.

A paid job (training's ``Model``, generation's ``Generation``) asks billing for credits with
its ``*.requested.v1`` event. Billing answers ``billing.credits.reserved.v1`` (the hold is
placed: the job starts), ``billing.credits.rejected.v1`` (nothing was held: the job fails),
and later perhaps ``billing.hold.expired.v1`` (the job outlived its paid time: it is stopped).
A reservation that reaches a job the user canceled meanwhile (or one that failed) is answered
with the job's outcome again, so billing releases the hold at once instead of at its expiry.

The rules are the aggregate's (:class:`PaidJob`, pure, in the service's domain: it changes
state and records the events it raises, the outcome sent again included); this class only
routes billing's events to it and has the repository save it (changes and events) in the
consumer's unit of work. Each answer arrives at least once and in any order: the aggregate
ignores what does not move it forward.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, Protocol, TypeVar

from visiona.kit.consumer import EventHandler
from visiona.kit.db import UnitOfWork
from visiona.kit.events import CreditsRejectedV1, CreditsReservedV1, Event, HoldExpiredV1
from visiona.kit.logging import get_logger

log = get_logger(__name__)


class PaidJob(Protocol):
    """What a job paid for with held credits does with billing's answers."""

    def credits_reserved(self, hold_id: uuid.UUID, now: datetime) -> bool:
        """The hold is placed: start (True), or, for a job that ended meanwhile, raise its
        outcome again so billing releases the hold at once (False)."""
        ...

    def credits_rejected(self, reason: str, message: str, now: datetime) -> bool:
        """Nothing was held: fail (False if the job is past waiting for credits)."""
        ...

    def hold_expired(self, now: datetime) -> bool:
        """The paid time is over: stop (False if the job has ended already)."""
        ...


J = TypeVar("J", bound=PaidJob)


@dataclass(kw_only=True, eq=False)
class CreditsParticipant(Generic[J]):
    """Billing's answers for one kind of job (``job_kind`` in billing's events).

    ``load`` finds the job by the id it gave billing (locked for the transaction); ``save``
    writes its changes and hands its events to the unit of work (nothing, when there are
    none); ``wake`` nudges the service's job worker after commit, when the job has work to do
    now. ``rejected_message`` is formatted with ``required`` and ``available`` credits.
    """

    job_kind: str
    load: Callable[[UnitOfWork, uuid.UUID], Awaitable[J | None]]
    save: Callable[[UnitOfWork, J], Awaitable[None]]
    rejected_message: str
    wake: Callable[[], None]

    async def _job(self, job_id: uuid.UUID, uow: UnitOfWork) -> J | None:
        job = await self.load(uow, job_id)
        if job is None:
            log.warning(
                "credits.answer_for_unknown_job", job_kind=self.job_kind, job_id=str(job_id)
            )
        return job

    async def reserved(self, event: CreditsReservedV1, uow: UnitOfWork) -> None:
        if event.job_kind != self.job_kind or (job := await self._job(event.job_id, uow)) is None:
            return
        if job.credits_reserved(event.hold_id, datetime.now(UTC)):
            uow.after_commit(self.wake)
        await self.save(uow, job)

    async def rejected(self, event: CreditsRejectedV1, uow: UnitOfWork) -> None:
        if event.job_kind != self.job_kind or (job := await self._job(event.job_id, uow)) is None:
            return
        message = self.rejected_message.format(required=event.required, available=event.available)
        job.credits_rejected(event.reason, message, datetime.now(UTC))
        await self.save(uow, job)

    async def hold_expired(self, event: HoldExpiredV1, uow: UnitOfWork) -> None:
        if event.job_kind != self.job_kind or (job := await self._job(event.job_id, uow)) is None:
            return
        if job.hold_expired(datetime.now(UTC)):
            uow.after_commit(self.wake)
        await self.save(uow, job)

    def handlers(self) -> Mapping[type[Event], EventHandler]:
        return {
            CreditsReservedV1: self.reserved,  # type: ignore[dict-item]
            CreditsRejectedV1: self.rejected,  # type: ignore[dict-item]
            HoldExpiredV1: self.hold_expired,  # type: ignore[dict-item]
        }
