"""Rows of one table as dataclasses: load (optionally ``FOR UPDATE``) and save changes.

For aggregates whose every change goes through one locked read and one UPDATE in the unit of
work (a model, a generation): the dataclass names the columns, nothing else does.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import fields
from typing import Any, Generic, TypeVar

import sqlalchemy as sa

from visiona.kit.db import Database, UnitOfWork
from visiona.kit.idempotency import RequestKey
from visiona.kit.paging import Keyset

T = TypeVar("T")


class RowStore(Generic[T]):
    def __init__(self, table: str, cls: type[T]) -> None:
        self.table = table
        self.cls = cls
        self.columns = [f.name for f in fields(cls)]  # type: ignore[arg-type]
        self.select = f"SELECT {', '.join(self.columns)} FROM {table}"

    def record(self, row: Any) -> T:
        return self.cls(**{name: getattr(row, name) for name in self.columns})

    async def load(
        self, uow: UnitOfWork, value: object, *, by: str = "id", lock: bool = True
    ) -> T | None:
        """The row whose ``by`` column is ``value`` (locked for the transaction by default)."""
        if by not in self.columns:
            raise ValueError(f"{by} is not a column of {self.table}")
        row = (
            await uow.session.execute(
                sa.text(f"{self.select} WHERE {by} = :v{' FOR UPDATE' if lock else ''}"),
                {"v": value},
            )
        ).first()
        return self.record(row) if row is not None else None

    async def made_with(self, uow: UnitOfWork, user_id: str, key: RequestKey | None) -> T | None:
        """The row the user's idempotency key made (ADR 0009: the table has ``user_id``,
        ``idempotency_key`` and ``request_fingerprint``), unlocked, if any (none without a
        key); refused when that key came with a different request."""
        if key is None:
            return None
        row = (
            await uow.session.execute(
                sa.text(
                    f"SELECT id, request_fingerprint FROM {self.table} "
                    "WHERE user_id = :u AND idempotency_key = :k"
                ),
                {"u": user_id, "k": key.key},
            )
        ).first()
        if row is None:
            return None
        key.check(row.request_fingerprint)
        return await self.load(uow, row.id, lock=False)

    async def page(self, uow: UnitOfWork, keyset: Keyset, *, where: Iterable[str] = ()) -> list[T]:
        """A page of the rows matching ``where``, newest first (:func:`keyset_page`)."""
        return [self.record(r) for r in await keyset_page(uow, self.select, keyset, where=where)]

    async def save(self, uow: UnitOfWork, record: T, **changes: Any) -> None:
        """Write ``changes`` (and ``updated_at``) to the row, and to ``record``."""
        if not changes:
            return
        unknown = set(changes) - set(self.columns)
        if unknown:
            raise ValueError(f"not columns of {self.table}: {sorted(unknown)}")
        sets = ", ".join(f"{name} = :{name}" for name in changes)
        await uow.session.execute(
            sa.text(f"UPDATE {self.table} SET {sets}, updated_at = now() WHERE id = :row_id"),
            {**changes, "row_id": record.id},  # type: ignore[attr-defined]
        )
        for name, value in changes.items():
            setattr(record, name, value)


async def keyset_page(
    uow: UnitOfWork,
    select: str,
    keyset: Keyset,
    *,
    where: Iterable[str] = (),
    params: Mapping[str, Any] | None = None,
    alias: str = "",
) -> list[Any]:
    """The rows of ``select`` (``SELECT … FROM …``) that match every condition of ``where``,
    newest first by ``(created_at, id)`` (of the table ``alias`` names), ``keyset.fetch`` of
    them after ``keyset.after``."""
    at = f"{alias}." if alias else ""
    conditions = list(where)
    values = {**(params or {}), "limit": keyset.fetch}
    if keyset.after is not None:
        conditions.append(f"({at}created_at, {at}id) < (:at, :id)")
        values |= {"at": keyset.after[0], "id": keyset.after[1]}
    filtered = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    rows = await uow.session.execute(
        sa.text(f"{select}{filtered} ORDER BY {at}created_at DESC, {at}id DESC LIMIT :limit"),
        values,
    )
    return list(rows.all())


async def lock_user_scope(uow: UnitOfWork, scope: str, user_id: str) -> None:
    """Serialise the user's ``scope`` changes (their limits, their idempotency keys): an
    advisory lock held to the end of the unit of work."""
    await uow.session.execute(
        sa.text("SELECT pg_advisory_xact_lock(hashtext(:scope || ':' || :u))"),
        {"scope": scope, "u": user_id},
    )


async def lock_row(uow: UnitOfWork, table: str, row_id: uuid.UUID, columns: str) -> Any | None:
    """``columns`` of the row ``row_id`` of ``table``, locked; None when it is gone."""
    return (
        await uow.session.execute(
            sa.text(f"SELECT {columns} FROM {table} WHERE id = :id FOR UPDATE"), {"id": row_id}
        )
    ).first()


async def set_moved_keys(
    uow: UnitOfWork, table: str, row_id: uuid.UUID, **keys: str | None
) -> None:
    """Point a row at objects moved to owner keys (visiona.kit.owners): each ``column=key``,
    a ``None`` key keeping the column as it is."""
    sets = ", ".join(f"{column} = coalesce(:{column}, {column})" for column in keys)
    await uow.session.execute(
        sa.text(f"UPDATE {table} SET {sets} WHERE id = :row_id"), {**keys, "row_id": row_id}
    )


async def made_before(
    db: Database,
    user_id: str,
    key: RequestKey | None,
    find: Callable[[UnitOfWork, str, RequestKey | None], Awaitable[T | None]],
) -> T | None:
    """What an earlier call with the same idempotency key made (``find``, in a read of its
    own), asked before anything the first call changed is checked again (a plan's limit
    counts it): a retry whose answer was lost gets it as it stands now (ADR 0009). None
    without a key. The create asks again under its lock, for a concurrent twin."""
    if key is None:
        return None
    async with db.uow(user_id) as uow:
        return await find(uow, user_id, key)
