"""An operator's hands on a service's paid provider jobs (training's models, generation's
generations): find the ones stuck, put one back to work, or fail one.

The services' ``service/admin.py`` wire this to their own rows and repository; their gRPC
handlers let only the system principal in (the gateway's ``/v1/admin`` routes, which let only
operators in). Reading across users is explicit: the list and the lookup of a job's owner run
as the system principal (the tables' ``system_read`` policies), every change runs in the
owner's own transaction, under RLS, through the same transitions the job's own work uses.

- A job is *stuck* when it has not ended and was created more than ``older_than_s`` ago
  (a training takes minutes, a generation seconds; the operator chooses the age).
- *Retry* makes its next step due now with a fresh count of attempts; a job with no step
  left (a lost webhook, a reconciler that gave up) is given the one that moves it on:
  asking billing again, launching, or asking the provider. A step running now keeps its lease
  (two workers never run one row).
- *Fail* ends it as ``failed`` with the reason ``operator_failed``: the job's own failure
  event goes out through the outbox and billing releases the hold as for any failed job, once
  (a job that already ended is not failed again, so no second event, and billing settles a
  hold once by its key anyway).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import sqlalchemy as sa

from visiona.kit.aggregate import AWAITING_CREDITS, ProviderJob
from visiona.kit.db import Database, UnitOfWork
from visiona.kit.errors import FailedPrecondition, InvalidArgument, NotFound
from visiona.kit.logging import get_logger
from visiona.kit.paging import Keyset, parse_id
from visiona.kit.rows import RowStore, keyset_page

log = get_logger(__name__)

OPERATOR_FAILED = "operator_failed"
# What the user reads on a job an operator ended (the operator's reason is in the audit log,
# not shown to the user: it may name other people or internal systems).
OPERATOR_FAILED_MESSAGE = "stopped by support; any credits held for it were released"
MAX_AGE_S = 366 * 24 * 3600
WORK_NAME_MAX = 40

J = TypeVar("J", bound=ProviderJob)


@dataclass(frozen=True)
class JobOutcome(Generic[J]):
    job: J
    changed: bool


def next_step(job: ProviderJob) -> str:
    """The step that moves a job without one on: billing's answer asked again, the launch,
    or the provider asked (a job whose provider never heard of it is launched)."""
    if job.status == AWAITING_CREDITS:
        return "ask_credits"
    if job.status == job.launch_status:
        return "launch"
    return "poll"


def resume(job: ProviderJob, now: datetime) -> bool:
    """Make the job's next step due now with a fresh count of attempts (see the module);
    False when the job has ended (nothing to retry)."""
    if job.state.terminal:
        return False
    job._set(work=job.work or next_step(job), work_after=now, work_attempts=0)
    return True


class JobAdmin(Generic[J]):
    """One service's paid jobs, for operators.

    ``save`` is the service repository's save of a job (one UPDATE, the events to the
    outbox); ``wake`` tells the service's job loop that work is due.
    """

    def __init__(
        self,
        db: Database,
        rows: RowStore[J],
        save: Callable[[UnitOfWork, J], Awaitable[None]],
        wake: Callable[[], None],
        *,
        terminal: frozenset[str],
    ) -> None:
        self.db = db
        self.rows = rows
        self.save = save
        self.wake = wake
        self.terminal = terminal

    async def stuck(
        self, *, older_than_s: int, work: str, page_size: int, page_token: str
    ) -> tuple[list[J], str]:
        """Jobs of every user not ended and older than ``older_than_s``, newest first;
        ``work`` keeps those whose next step is that one (e.g. ``ingest``)."""
        if not 0 <= older_than_s <= MAX_AGE_S:
            raise InvalidArgument(f"older_than_s must be 0-{MAX_AGE_S}", code="older_than_invalid")
        if len(work) > WORK_NAME_MAX:
            raise InvalidArgument("work is not a step name", code="work_invalid")
        keyset = Keyset.of(page_size, page_token)
        where = [
            "NOT (status = ANY(:terminal))",
            "created_at < now() - make_interval(secs => :age)",
        ]
        params: dict[str, Any] = {"terminal": sorted(self.terminal), "age": older_than_s}
        if work:
            where.append("work = :work")
            params["work"] = work
        async with self.db.uow(system=True) as uow:
            found = await keyset_page(uow, self.rows.select, keyset, where=where, params=params)
        return keyset.cut([self.rows.record(r) for r in found])

    async def of_user(
        self, user_id: str, *, page_size: int, page_token: str
    ) -> tuple[list[J], str]:
        """One user's jobs, ended or not, newest first: read in the user's own transaction,
        the user named by the operator's request (the caller checked it is the system's)."""
        if not user_id:
            raise InvalidArgument("user_id is required", code="user_id_required")
        keyset = Keyset.of(page_size, page_token)
        async with self.db.uow(user_id) as uow:
            found = await keyset_page(uow, self.rows.select, keyset)
        return keyset.cut([self.rows.record(r) for r in found])

    async def _owner(self, job_id: uuid.UUID) -> str:
        async with self.db.uow(system=True) as uow:
            owner = (
                await uow.session.execute(
                    sa.text(f"SELECT user_id FROM {self.rows.table} WHERE id = :id"),
                    {"id": job_id},
                )
            ).scalar_one_or_none()
        if owner is None:
            raise NotFound("no such job", code="job_not_found")
        return str(owner)

    async def _change(self, job_id: str, change: Callable[[J, datetime], bool]) -> JobOutcome[J]:
        row_id = parse_id(job_id, "job")
        owner = await self._owner(row_id)
        async with self.db.uow(owner) as uow:
            job = await self.rows.load(uow, row_id, lock=True)
            if job is None:
                raise NotFound("no such job", code="job_not_found")
            changed = change(job, datetime.now(UTC))
            if changed:
                await self.save(uow, job)
                await uow.commit()
        return JobOutcome(job, changed)

    async def retry(self, job_id: str) -> JobOutcome[J]:
        def retried(job: J, now: datetime) -> bool:
            if job.state.terminal:
                raise FailedPrecondition("the job has ended", code="job_finished")
            return resume(job, now)

        outcome = await self._change(job_id, retried)
        self.wake()
        log.info("jobs.operator_retry", job_id=job_id, work=outcome.job.work)
        return outcome

    async def fail(self, job_id: str) -> JobOutcome[J]:
        outcome = await self._change(
            job_id, lambda job, now: job.fail(OPERATOR_FAILED, OPERATOR_FAILED_MESSAGE, now)
        )
        self.wake()  # a job still running at the provider has its cancel step due
        log.info("jobs.operator_fail", job_id=job_id, changed=outcome.changed)
        return outcome
