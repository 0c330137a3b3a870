"""The user's own data in generation: erasure (GDPR/CCPA, :mod:`.erasure`) and export
(:mod:`.export`).

Both sagas are the gateway's (see the catalogue in :mod:`visiona.kit.events`). The consumer
only records the request, in the inbox transaction (an ``erasures`` or ``exports`` row, which
is its own background job, :class:`~visiona.kit.jobs.RowJobs`), and acks: no delivery is held
while Replicate or S3 is waited on. A request repeated with a new event id finds its row still
there (nothing more to do: the worker answers it) or, once answered, does the work and answers
again. Every step may run again from its start after a crash; the row is deleted in the
transaction that emits the answer.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from visiona.generation.account.erasure import ErasureJobs
from visiona.generation.account.export import ExportJobs
from visiona.generation.config import GenerationSettings
from visiona.generation.jobs import GenerationJobs
from visiona.kit.consumer import EventHandler
from visiona.kit.db import Database, UnitOfWork
from visiona.kit.events import ErasureRequestedV1, Event, ExportRequestedV1
from visiona.kit.jobs import JobSettings
from visiona.kit.logging import get_logger
from visiona.kit.storage import Storage

log = get_logger(__name__)

ACCOUNT_CONSUMER = "generation.account"


class AccountRequests:
    """The consumer: a request becomes a row for the workers, in the inbox transaction."""

    def __init__(self, erasures: ErasureJobs, exports: ExportJobs) -> None:
        self.erasures = erasures
        self.exports = exports

    async def erasure_requested(self, event: ErasureRequestedV1, uow: UnitOfWork) -> None:
        await uow.session.execute(
            sa.text(
                "INSERT INTO erasures (id, user_id, deletion_id, round, work, work_after) "
                "VALUES (:id, :user, :deletion, :round, 'purge', now()) "
                "ON CONFLICT (deletion_id, round) DO NOTHING"
            ),
            {
                "id": uuid.uuid4(),
                "user": event.user_id,
                "deletion": event.deletion_id,
                "round": event.round,
            },
        )
        uow.after_commit(self.erasures.wake)
        log.info("erasure.requested", deletion_id=str(event.deletion_id), round=event.round)

    async def export_requested(self, event: ExportRequestedV1, uow: UnitOfWork) -> None:
        await uow.session.execute(
            sa.text(
                "INSERT INTO exports (id, user_id, work, work_after) "
                "VALUES (:id, :user, 'export', now()) ON CONFLICT (id) DO NOTHING"
            ),
            {"id": event.export_id, "user": event.user_id},
        )
        uow.after_commit(self.exports.wake)
        log.info("export.requested", export_id=str(event.export_id))

    def handlers(self) -> dict[type[Event], EventHandler]:
        return {
            ErasureRequestedV1: self.erasure_requested,  # type: ignore[dict-item]
            ExportRequestedV1: self.export_requested,  # type: ignore[dict-item]
        }


def account_jobs(
    db: Database, storage: Storage, generations: GenerationJobs, settings: GenerationSettings
) -> tuple[ErasureJobs, ExportJobs]:
    """The two workers, on the generation jobs' timings."""
    job_settings = JobSettings(
        poll_interval_s=settings.work_poll_interval_s,
        batch=settings.work_batch,
        lease_s=settings.work_lease_s,
        max_attempts=settings.work_max_attempts,
    )
    return (
        ErasureJobs(db, storage, generations, job_settings),
        ExportJobs(db, storage, job_settings),
    )
