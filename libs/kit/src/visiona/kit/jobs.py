"""Background steps kept on the rows they belong to (a model, a generation).

A user-owned table with the columns ``work`` (the next step's name, or NULL), ``work_after``
(when it is due), ``work_attempts`` and ``lease_until`` is its own job queue. :class:`RowJobs`
claims due rows with a conditional UPDATE (several replicas share the work, each row runs on
one), renews the lease while a step runs (a crashed worker's rows come back after
``lease_s``), and backs off exponentially when a step fails. A subclass names its rows (a
:class:`~visiona.kit.rows.RowStore`: the table, how a row is loaded and saved), runs
``step_<work>(row)``, and says what giving up means. A row that is an aggregate (its
transitions record their changes and events: visiona.kit.aggregate) changes in a step through
:meth:`RowJobs.transition`, saved by the service's repository (:meth:`RowJobs.record`).

Steps must be idempotent: a step may run again after a crash at any point.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

import sqlalchemy as sa

from visiona.kit.db import Database, UnitOfWork
from visiona.kit.errors import NotYet
from visiona.kit.faults import dependency_unavailable
from visiona.kit.logging import get_logger, user_ref
from visiona.kit.rows import RowStore

log = get_logger(__name__)

MAX_BACKOFF_S = 300.0


@dataclass(kw_only=True)
class JobColumns:
    """The columns a row that is its own job has (see the module), as a record's fields; a
    table's record adds its own."""

    id: uuid.UUID
    user_id: str
    work: str | None
    work_after: datetime | None
    work_attempts: int
    lease_until: datetime | None


class JobRow(Protocol):
    id: uuid.UUID
    user_id: str
    work: str | None
    work_attempts: int


Row = TypeVar("Row", bound=JobRow)


@dataclass(frozen=True)
class JobSettings:
    poll_interval_s: float = 1.0
    batch: int = 8
    lease_s: float = 60.0
    max_attempts: int = 8
    # A step that failed because a dependency is unavailable (visiona.kit.faults) is tried
    # again this soon, and the failure is not counted among its attempts.
    outage_retry_s: float = 2.0


class Vanished(Exception):
    """The row is gone (deleted by its own step): nothing left to settle."""


class RowJobs(abc.ABC, Generic[Row]):
    # The rows that are the jobs (or a ``table`` with :meth:`load` and :meth:`save` of one's own).
    rows: RowStore[Row]
    table: str
    name: str

    def __init__(self, db: Database, settings: JobSettings) -> None:
        self.db = db
        self.job_settings = settings
        self._wake = asyncio.Event()
        if not hasattr(self, "table"):
            self.table = self.rows.table

    # -- what a subclass provides ----------------------------------------------------------------

    async def load(self, uow: UnitOfWork, row_id: uuid.UUID, *, lock: bool) -> Row | None:
        """The row (``FOR UPDATE`` when ``lock``), or None when it is gone."""
        return await self.rows.load(uow, row_id, lock=lock)

    async def save(self, uow: UnitOfWork, row: Row, **changes: Any) -> None:
        """Write ``changes`` (the job's bookkeeping) to the row and to ``row``."""
        await self.rows.save(uow, row, **changes)

    async def record(self, uow: UnitOfWork, row: Row) -> None:
        """Save what the transitions of a row that is an aggregate changed and raised (the
        service's repository: one UPDATE, the events to the outbox)."""
        raise NotImplementedError(f"{type(self).__name__} rows are no aggregate")

    async def give_up(self, uow: UnitOfWork, row: Row, kind: str, error: BaseException) -> bool:
        """Called when a step failed ``max_attempts`` times or ``permanent(error)``: end the
        row's job (fail it) and return True, or return False to keep retrying at the longest
        interval."""
        return False

    def max_attempts(self, kind: str) -> int:
        """Attempts of a ``kind`` step before :meth:`give_up` is asked."""
        return self.job_settings.max_attempts

    def permanent(self, error: BaseException) -> bool:
        """True when retrying ``error`` cannot help."""
        return False

    # -- the loop --------------------------------------------------------------------------------

    def wake(self) -> None:
        """New work may be due (called after a commit that scheduled some)."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Claim due rows and run their steps, up to ``batch`` at once: a long step (a big
        download) never holds back new work, and a wake-up during a pass is never lost (the
        flag is cleared before claiming, so it stays set for the next pass)."""
        running: set[asyncio.Task[None]] = set()
        try:
            while not stop.is_set():
                self._wake.clear()
                room = self.job_settings.batch - len(running)
                claimed: list[Row] = []
                if room > 0:
                    try:
                        claimed = await self._claim(room, exclude={t.get_name() for t in running})
                    except Exception:
                        log.exception("jobs.loop_failed", jobs=self.name)
                for row in claimed:
                    task = asyncio.create_task(self._run(row), name=str(row.id))
                    running.add(task)
                    task.add_done_callback(running.discard)
                if claimed and len(running) < self.job_settings.batch:
                    continue
                waiters: list[asyncio.Future[Any]] = [
                    asyncio.ensure_future(stop.wait()),
                    asyncio.ensure_future(self._wake.wait()),
                ]
                if running:
                    waiters.append(
                        asyncio.ensure_future(
                            asyncio.wait(set(running), return_when=asyncio.FIRST_COMPLETED)
                        )
                    )
                await asyncio.wait(
                    waiters,
                    timeout=self.job_settings.poll_interval_s,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                for waiter in waiters:
                    waiter.cancel()
        finally:
            # Steps in flight finish (a lease they hold would otherwise block the row).
            if running:
                await asyncio.wait(set(running), timeout=self.job_settings.lease_s)

    async def run_once(self) -> int:
        """Claim and run the due steps to completion; the number run (tests, tools)."""
        claimed = await self._claim(self.job_settings.batch)
        if claimed:
            await asyncio.gather(*(self._run(row) for row in claimed))
        return len(claimed)

    async def _claim(self, limit: int, exclude: set[str] | None = None) -> list[Row]:
        async with self.db.uow(system=True) as uow:
            due = (
                await uow.session.execute(
                    sa.text(
                        f"SELECT id, user_id, work FROM {self.table} WHERE work IS NOT NULL "
                        "AND work_after <= now() AND (lease_until IS NULL OR lease_until < now()) "
                        "ORDER BY work_after LIMIT :n"
                    ),
                    {"n": limit + len(exclude or ())},
                )
            ).all()
        claimed: list[Row] = []
        for candidate in due:
            if exclude and str(candidate.id) in exclude:
                continue
            if len(claimed) >= limit:
                break
            async with self.db.uow(candidate.user_id) as uow:
                got = (
                    await uow.session.execute(
                        sa.text(
                            f"UPDATE {self.table} SET lease_until = now() + "
                            "make_interval(secs => :lease), work_attempts = work_attempts + 1 "
                            "WHERE id = :id AND work = :work "
                            "AND (lease_until IS NULL OR lease_until < now()) RETURNING id"
                        ),
                        {
                            "id": candidate.id,
                            "work": candidate.work,
                            "lease": self.job_settings.lease_s,
                        },
                    )
                ).first()
                if got is None:
                    continue  # another worker took it
                row = await self.load(uow, candidate.id, lock=False)
                await uow.commit()
            if row is not None:
                claimed.append(row)
        return claimed

    async def transition(self, row: Row, change: Callable[[Row], bool]) -> bool:
        """Apply ``change`` (a transition) to the row as it is now, locked, record what it
        changed and raised, and commit; what ``change`` answered (whether the row moved)."""
        async with self.locked(row) as (uow, current):
            moved = change(current)
            await self.record(uow, current)
            await uow.commit()
        return moved

    @contextlib.asynccontextmanager
    async def locked(self, row: Row) -> AsyncIterator[tuple[UnitOfWork, Row]]:
        """The row as it is now, locked, in a unit of work the caller commits."""
        async with self.db.uow(row.user_id) as uow:
            current = await self.load(uow, row.id, lock=True)
            if current is None:
                raise Vanished()
            yield uow, current

    async def _run(self, row: Row) -> None:
        kind = row.work
        assert kind is not None
        step = getattr(self, f"step_{kind}")
        error: BaseException | None = None
        heartbeat = asyncio.create_task(self._keep_lease(row))
        try:
            await step(row)
        except Vanished:
            # No row id: the row went with an erasure, and logs never name what it removed.
            log.info("jobs.step_vanished", jobs=self.name, work=kind)
            return
        except Exception as exc:  # retried below
            error = exc
            log.warning(
                "jobs.step_failed",
                jobs=self.name,
                row_id=str(row.id),
                work=kind,
                attempt=row.work_attempts,
                # Errors can quote an object key, which holds the user id: pseudonymised.
                error=str(exc).replace(row.user_id, user_ref(row.user_id)),
            )
        finally:
            heartbeat.cancel()
        try:
            with contextlib.suppress(Vanished):
                await self._settle(row, kind, error)
        except Exception as exc:
            # The database went away between the step and its settling: nothing is lost, the
            # lease runs out and the row is claimed again.
            log.warning(
                "jobs.settle_failed",
                jobs=self.name,
                row_id=str(row.id),
                work=kind,
                error=type(exc).__name__,
            )

    async def _keep_lease(self, row: Row) -> None:
        """Renew the lease while a step runs: a long step keeps it, a dead worker loses it."""
        lease = self.job_settings.lease_s
        while True:
            await asyncio.sleep(lease / 3)
            try:
                async with self.db.uow(row.user_id) as uow:
                    await uow.session.execute(
                        sa.text(
                            f"UPDATE {self.table} SET lease_until = now() + "
                            "make_interval(secs => :s) WHERE id = :id AND lease_until IS NOT NULL"
                        ),
                        {"id": row.id, "s": lease},
                    )
                    await uow.commit()
            except Exception:
                log.warning("jobs.lease_renewal_failed", jobs=self.name, row_id=str(row.id))

    async def _settle(self, row: Row, kind: str, error: BaseException | None) -> None:
        async with self.locked(row) as (uow, current):
            changes: dict[str, Any] = {"lease_until": None}
            if error is not None and current.work == kind and isinstance(error, NotYet):
                # Nobody's fault either: tried again when it says, the claim's count given back.
                changes["work_attempts"] = max(current.work_attempts - 1, 0)
                changes["work_after"] = datetime.now(UTC) + timedelta(seconds=error.retry_after_s)
            elif error is not None and current.work == kind and dependency_unavailable(error):
                # An outage is no attempt of the step's: the claim's count is given back.
                changes["work_attempts"] = max(current.work_attempts - 1, 0)
                changes["work_after"] = datetime.now(UTC) + timedelta(
                    seconds=self.job_settings.outage_retry_s
                )
            elif error is not None and current.work == kind:
                exhausted = current.work_attempts >= self.max_attempts(kind)
                if exhausted or self.permanent(error):
                    await self.save(uow, current, **changes)
                    if await self.give_up(uow, current, kind, error):
                        await uow.commit()
                        return
                delay = min(2.0 ** max(current.work_attempts - 1, 0), MAX_BACKOFF_S)
                changes["work_after"] = datetime.now(UTC) + timedelta(seconds=delay)
            elif error is None and current.work == kind:
                changes["work_attempts"] = 0
            await self.save(uow, current, **changes)
            await uow.commit()
