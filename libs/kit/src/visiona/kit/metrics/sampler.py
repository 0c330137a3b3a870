"""Gauges read from the database every ``metrics_sample_interval_s``: the outbox backlog and
its oldest row, and the job rows a process owns by kind and state.

One grouped query per table, as the system principal (the job tables' ``system_read``
policy: counting every user's rows is cross-user work, declared as such; nothing is
written). A sampled gauge describes the table, not the process: every replica reports the
same numbers, so dashboards take ``max`` over instances, never ``sum``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from visiona.kit import metrics
from visiona.kit.db import Database

_OUTBOX = sa.text(
    "SELECT count(*) AS backlog, "
    "coalesce(extract(epoch FROM now() - min(created_at)), 0) AS oldest_s "
    "FROM outbox WHERE published_at IS NULL"
)


@dataclass(frozen=True)
class JobKind:
    """A table whose rows are jobs of one ``kind``: its ``status`` column holds one of
    ``states`` (the table's CHECK), of which ``final`` ones are over; ``created`` is when a
    job began, ``live`` a condition the counted rows meet (soft-deleted rows are no jobs)."""

    kind: str
    table: str
    states: tuple[str, ...]
    final: frozenset[str]
    created: str = "created_at"
    live: str = "true"

    def query(self) -> sa.TextClause:
        return sa.text(
            f"SELECT status AS state, count(*) AS n, "
            f"extract(epoch FROM now() - min({self.created})) AS oldest_s "
            f'FROM "{self.table}" WHERE {self.live} GROUP BY status'
        )


async def sample_outbox(db: Database) -> None:
    async with db.engine.connect() as conn:
        row = (await conn.execute(_OUTBOX)).one()
    metrics.outbox_backlog.set(row.backlog)
    metrics.outbox_oldest_age.set(max(0.0, float(row.oldest_s)))


async def sample_jobs(db: Database, kind: JobKind) -> None:
    async with db.uow(system=True) as uow:
        rows = (await uow.session.execute(kind.query())).all()
    counts = {state: 0 for state in kind.states}
    oldest = 0.0
    for row in rows:
        counts[row.state] = row.n
        if row.state not in kind.final:
            oldest = max(oldest, float(row.oldest_s or 0))
    for state, n in counts.items():
        metrics.jobs.labels(kind.kind, state).set(n)
    metrics.job_oldest_active_age.labels(kind.kind).set(oldest)


def sampler(db: Database, kinds: Sequence[JobKind]) -> Callable[[], Awaitable[None]]:
    """A periodic tick sampling the outbox and every kind of job in ``kinds``."""

    async def tick() -> None:
        await sample_outbox(db)
        for kind in kinds:
            await sample_jobs(db, kind)

    return tick
