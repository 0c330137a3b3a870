"""Row jobs (visiona.kit.jobs): a dependency outage, or another worker's attempt in flight
(NotYet), is nobody's attempt; a bug is."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from tests.support.infra import Infra
from tests.support.schemas import SchemaDb, fresh_schema
from visiona.kit.db import Database, UnitOfWork
from visiona.kit.errors import NotYet
from visiona.kit.jobs import JobColumns, JobSettings, RowJobs
from visiona.kit.migrations import user_rls_ddl
from visiona.kit.rows import RowStore

SCHEMA = "jobtest"
DDL = (
    f"CREATE TABLE {SCHEMA}.chores (id uuid PRIMARY KEY, user_id text NOT NULL, work text, "
    "work_after timestamptz, work_attempts integer NOT NULL DEFAULT 0, lease_until timestamptz, "
    "done boolean NOT NULL DEFAULT false, given_up boolean NOT NULL DEFAULT false, "
    "updated_at timestamptz NOT NULL DEFAULT now());"
    + user_rls_ddl(SCHEMA, "chores", system_read=True)
)
MAX_ATTEMPTS = 2


@dataclass
class Chore(JobColumns):
    done: bool
    given_up: bool


STORE = RowStore("chores", Chore)


async def an_outage() -> BaseException:
    """What the database driver raises when the server is not there (a real one)."""
    try:
        await psycopg.AsyncConnection.connect("postgresql://nobody@127.0.0.1:1/none")
    except psycopg.OperationalError as exc:
        return exc
    raise AssertionError("port 1 answered")


class Chores(RowJobs[Chore]):
    table = "chores"
    name = "chores"

    def __init__(self, db: Database, failures: list[BaseException]) -> None:
        super().__init__(db, JobSettings(max_attempts=MAX_ATTEMPTS, outage_retry_s=0))
        self.failures = failures

    async def load(self, uow: UnitOfWork, row_id: uuid.UUID, *, lock: bool) -> Chore | None:
        return await STORE.load(uow, row_id, lock=lock)

    async def save(self, uow: UnitOfWork, row: Chore, **changes: Any) -> None:
        await STORE.save(uow, row, **changes)

    async def give_up(self, uow: UnitOfWork, row: Chore, kind: str, error: BaseException) -> bool:
        await self.save(uow, row, work=None, given_up=True)
        return True

    async def step_chore(self, row: Chore) -> None:
        if self.failures:
            raise self.failures.pop(0)
        async with self.locked(row) as (uow, current):
            await self.save(uow, current, work=None, done=True)
            await uow.commit()


@pytest.fixture
async def jobs_db(infra: Infra, run_id: str) -> AsyncIterator[tuple[SchemaDb, Database]]:
    with fresh_schema(infra, run_id, SCHEMA, ddl=DDL) as schema:
        async with schema.opened() as db:
            yield schema, db


async def a_chore(db: Database) -> uuid.UUID:
    chore_id, user = uuid.uuid4(), "user_chores"
    async with db.uow(user) as uow:
        await uow.session.execute(
            sa.text(
                "INSERT INTO chores (id, user_id, work, work_after) "
                "VALUES (:id, :u, 'chore', now())"
            ),
            {"id": chore_id, "u": user},
        )
        await uow.commit()
    return chore_id


async def test_an_outage_longer_than_the_attempts_gives_nothing_up(
    jobs_db: tuple[SchemaDb, Database],
) -> None:
    schema, db = jobs_db
    outages = [await an_outage() for _ in range(3 * MAX_ATTEMPTS)]
    jobs = Chores(db, list(outages))
    chore = await a_chore(db)
    while await jobs.run_once():
        # Due again at once, whatever pause the failure earned.
        schema.sql("UPDATE chores SET work_after = now() WHERE id = %s AND work IS NOT NULL", chore)
    # Done, never given up, and the one attempt counted is the one that ran.
    assert schema.sql("SELECT done, given_up, work_attempts FROM chores WHERE id = %s", chore) == [
        (True, False, 1)
    ]


async def test_a_failing_step_is_given_up_after_its_attempts(
    jobs_db: tuple[SchemaDb, Database],
) -> None:
    schema, db = jobs_db
    jobs = Chores(db, [ValueError("a bug")] * (3 * MAX_ATTEMPTS))
    chore = await a_chore(db)
    runs = 0
    while await jobs.run_once():
        runs += 1
        # A bug backs off (1 s, 2 s, …): make the row due again at once.
        schema.sql("UPDATE chores SET work_after = now() WHERE id = %s AND work IS NOT NULL", chore)
    assert runs == MAX_ATTEMPTS
    assert schema.sql("SELECT done, given_up FROM chores WHERE id = %s", chore) == [(False, True)]


async def test_not_yet_comes_back_when_it_says_and_spends_no_attempt(
    jobs_db: tuple[SchemaDb, Database],
) -> None:
    schema, db = jobs_db
    jobs = Chores(db, [NotYet("in flight elsewhere", retry_after_s=60)] * (3 * MAX_ATTEMPTS))
    chore = await a_chore(db)
    assert await jobs.run_once() == 1
    # Due when it said (a minute), not after a bug's backoff, and no attempt spent.
    assert schema.sql(
        "SELECT work_attempts, work_after > now() + interval '50 seconds' FROM chores "
        "WHERE id = %s",
        chore,
    ) == [(0, True)]
    while await jobs.run_once() or jobs.failures:
        schema.sql("UPDATE chores SET work_after = now() WHERE id = %s AND work IS NOT NULL", chore)
    assert schema.sql("SELECT done, given_up FROM chores WHERE id = %s", chore) == [(True, False)]
