"""The user's own data in generation: erasure (GDPR/CCPA, :mod:`.erasure`) and export
(:mod:`.export`).

Both sagas are the gateway's (see the catalogue in :mod:`visiona.kit.events`). The consumer
(:class:`visiona.generation.consumers.AccountRequests`) only records the request, in the inbox
transaction (an ``erasures`` or ``exports`` row, which is its own background job,
:class:`~visiona.kit.jobs.RowJobs`), and acks: no delivery is held while Replicate or S3 is
waited on. A request repeated with a new event id finds its row still there (nothing more to
do: the worker answers it) or, once answered, does the work and answers again. Every step may
run again from its start after a crash; the row is deleted in the transaction that emits the
answer.
"""

from __future__ import annotations

from visiona.generation.account.erasure import ErasureJobs
from visiona.generation.account.export import ExportJobs
from visiona.generation.jobs.generation import GenerationJobs
from visiona.kit.db import Database
from visiona.kit.storage import Storage


def account_jobs(
    db: Database, storage: Storage, generations: GenerationJobs
) -> tuple[ErasureJobs, ExportJobs]:
    """The two workers, on the generation jobs' timings."""
    return (
        ErasureJobs(db, storage, generations, generations.job_settings),
        ExportJobs(db, storage, generations.job_settings),
    )
