"""The account sagas' tables: ``erasures`` and ``erasure_answers`` (erasure), ``exports``
(export), both row-jobs (visiona.kit.jobs), and what they read of the user's other rows."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from visiona.kit.db import UnitOfWork
from visiona.kit.erasure import unpublished_events
from visiona.kit.errors import Conflict
from visiona.kit.jobs import JobColumns
from visiona.kit.rows import RowStore


async def refuse_while_erasing(uow: UnitOfWork) -> None:
    """A user whose account erasure is running gets nothing new (the unit of work's user;
    the erasure's row is visible only to them)."""
    erasing = await uow.session.execute(sa.text("SELECT EXISTS (SELECT 1 FROM erasures)"))
    if erasing.scalar():
        raise Conflict("this account is being deleted", code="account_erasing")


async def _delete(uow: UnitOfWork, statement: str, **params: Any) -> int:
    """Run a DELETE; how many rows it removed."""
    result = await uow.session.execute(sa.text(statement), params)
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# -- erasure -------------------------------------------------------------------------------------


@dataclass
class _AccountJob(JobColumns):
    """A row that is its own job (visiona.kit.jobs.RowJobs): one saga request of a user."""

    requested_at: datetime
    updated_at: datetime


@dataclass
class ErasureRecord(_AccountJob):
    deletion_id: uuid.UUID
    round: int
    removed: int
    provider_training_ids: list[str]


ERASURES = RowStore("erasures", ErasureRecord)


@dataclass(frozen=True)
class Left:
    """What of the user is still here (the unit of work's user)."""

    models: int
    purging: int
    photos: int
    exports: int
    unpublished: int

    @property
    def new(self) -> bool:
        """Something appeared that ``take`` has not handled."""
        return bool(self.models or self.photos or self.exports)


async def left(uow: UnitOfWork, user_id: str) -> Left:
    row = (
        await uow.session.execute(
            sa.text(
                "SELECT (SELECT count(*) FROM models WHERE deleted_at IS NULL) AS models, "
                "(SELECT count(*) FROM models WHERE deleted_at IS NOT NULL) AS purging, "
                "(SELECT count(*) FROM photos) AS photos, "
                "(SELECT count(*) FROM exports) AS exports"
            )
        )
    ).one()
    unpublished = await unpublished_events(uow, user_id)
    return Left(row.models, row.purging, row.photos, row.exports, unpublished)


async def recorded_answer(uow: UnitOfWork, deletion_id: uuid.UUID, round_: int) -> int | None:
    found = await uow.session.execute(
        sa.text("SELECT removed FROM erasure_answers WHERE deletion_id = :d AND round = :r"),
        {"d": deletion_id, "r": round_},
    )
    value = found.scalar()
    return None if value is None else int(value)


async def record_answer(uow: UnitOfWork, deletion_id: uuid.UUID, round_: int, removed: int) -> bool:
    """Record the round's answer; False when it was answered already (this one is not kept)."""
    recorded = await uow.session.execute(
        sa.text(
            "INSERT INTO erasure_answers (deletion_id, round, removed) "
            "VALUES (:d, :r, :n) ON CONFLICT DO NOTHING RETURNING removed"
        ),
        {"d": deletion_id, "r": round_, "n": removed},
    )
    return recorded.first() is not None


async def add_erasure(uow: UnitOfWork, deletion_id: uuid.UUID, round_: int, user_id: str) -> None:
    """A round to do; a repeated request for a round in progress joins it (and cuts a backoff
    short)."""
    await uow.session.execute(
        sa.text(
            "INSERT INTO erasures (id, deletion_id, round, user_id, work, work_after) "
            "VALUES (:id, :deletion, :round, :user, 'take', now()) "
            "ON CONFLICT (deletion_id, round) DO UPDATE SET work_after = now() "
            "WHERE erasures.work IS NOT NULL"
        ),
        {"id": uuid.uuid4(), "deletion": deletion_id, "round": round_, "user": user_id},
    )


async def delete_erasure(uow: UnitOfWork, erasure_id: uuid.UUID) -> None:
    await _delete(uow, "DELETE FROM erasures WHERE id = :id", id=erasure_id)


async def delete_webhooks(uow: UnitOfWork, provider_ids: list[str]) -> int:
    """The webhook records of the user's trainings; how many."""
    return await _delete(
        uow, "DELETE FROM replicate_webhooks WHERE provider_id = ANY(:ids)", ids=provider_ids
    )


async def forget_answers(uow: UnitOfWork, older_than_s: float) -> int:
    """Drop the answers to erasure rounds older than ``older_than_s``; how many."""
    return await _delete(
        uow,
        "DELETE FROM erasure_answers WHERE answered_at < now() - make_interval(secs => :s)",
        s=older_than_s,
    )


# -- export --------------------------------------------------------------------------------------


@dataclass
class ExportRecord(_AccountJob):
    export_id: uuid.UUID


EXPORTS = RowStore("exports", ExportRecord)


async def add_export(uow: UnitOfWork, export_id: uuid.UUID, user_id: str) -> None:
    """An export to write; one in progress is not restarted."""
    await uow.session.execute(
        sa.text(
            "INSERT INTO exports (id, export_id, user_id, work, work_after) "
            "VALUES (:id, :export, :user, 'export', now()) ON CONFLICT (export_id) DO NOTHING"
        ),
        {"id": uuid.uuid4(), "export": export_id, "user": user_id},
    )


async def export_ids(uow: UnitOfWork) -> list[uuid.UUID]:
    """The user's exports in progress."""
    return list((await uow.session.execute(sa.text("SELECT export_id FROM exports"))).scalars())


async def delete_exports(uow: UnitOfWork, export_ids: list[uuid.UUID]) -> int:
    return await _delete(uow, "DELETE FROM exports WHERE export_id = ANY(:ids)", ids=export_ids)


async def delete_export(uow: UnitOfWork, row_id: uuid.UUID) -> None:
    await _delete(uow, "DELETE FROM exports WHERE id = :id", id=row_id)


async def user_rows(uow: UnitOfWork, table: str) -> list[dict[str, Any]]:
    """Every column of the user's rows of ``photos`` or ``models``, oldest first."""
    if table not in ("photos", "models"):
        raise ValueError(f"not a table of the user's data: {table}")
    rows = await uow.session.execute(sa.text(f"SELECT * FROM {table} ORDER BY created_at, id"))
    return [dict(r) for r in rows.mappings()]
