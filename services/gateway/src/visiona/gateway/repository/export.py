"""``exports``: a user's export requests, each its own row-job (see
visiona.gateway.account.export)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from visiona.kit.db import UnitOfWork
from visiona.kit.jobs import JobColumns
from visiona.kit.rows import RowStore


@dataclass
class Export(JobColumns):
    status: str  # collecting | assembling | ready | failed | expired
    parts: dict[str, dict[str, Any]]
    archive_key: str | None
    bytes: int | None
    error: str | None
    requested_at: datetime
    ready_at: datetime | None
    expires_at: datetime | None
    updated_at: datetime


rows = RowStore("exports", Export)


async def load(uow: UnitOfWork, export_id: uuid.UUID, *, lock: bool) -> Export | None:
    return await rows.load(uow, export_id, lock=lock)


async def save(uow: UnitOfWork, row: Export, **changes: Any) -> None:
    """Write ``changes`` to the row (``parts`` as JSON) and to ``row``."""
    if "parts" in changes:
        value = changes["parts"]
        changes["parts"] = json.dumps(value)
        await rows.save(uow, row, **changes)
        row.parts = value
        return
    await rows.save(uow, row, **changes)


async def lock_requests_of(uow: UnitOfWork, user_id: str) -> None:
    """Serialise the user's export requests for the rest of the transaction."""
    await uow.session.execute(
        sa.text("SELECT pg_advisory_xact_lock(hashtext('exports:' || :u))"), {"u": user_id}
    )


async def find_by_key(uow: UnitOfWork, user_id: str, idempotency_key: str) -> Export | None:
    row = (
        await uow.session.execute(
            sa.text(f"{rows.select} WHERE user_id = :u AND idempotency_key = :k"),
            {"u": user_id, "k": idempotency_key},
        )
    ).first()
    return rows.record(row) if row is not None else None


async def in_progress(uow: UnitOfWork, user_id: str) -> Export | None:
    """The user's latest export still collecting or assembling."""
    row = (
        await uow.session.execute(
            sa.text(
                f"{rows.select} WHERE user_id = :u AND status IN ('collecting', 'assembling') "
                "ORDER BY requested_at DESC LIMIT 1"
            ),
            {"u": user_id},
        )
    ).first()
    return rows.record(row) if row is not None else None


async def insert(
    uow: UnitOfWork, user_id: str, *, reask_after_s: float, idempotency_key: str | None
) -> uuid.UUID:
    """A new export, collecting, whose missing parts are asked for again after the delay."""
    export_id = uuid.uuid4()
    await uow.session.execute(
        sa.text(
            "INSERT INTO exports (id, user_id, status, work, work_after, idempotency_key) VALUES "
            "(:id, :u, 'collecting', 'reask', now() + make_interval(secs => :t), :k)"
        ),
        {"id": export_id, "u": user_id, "t": reask_after_s, "k": idempotency_key},
    )
    return export_id


async def recent(uow: UnitOfWork, user_id: str, limit: int = 20) -> list[Export]:
    result = await uow.session.execute(
        sa.text(f"{rows.select} WHERE user_id = :u ORDER BY requested_at DESC LIMIT :n"),
        {"u": user_id, "n": limit},
    )
    return [rows.record(r) for r in result]


async def ids_of(uow: UnitOfWork, user_id: str) -> list[uuid.UUID]:
    """Every export of the user, whatever its state."""
    result = await uow.session.execute(
        sa.text("SELECT id FROM exports WHERE user_id = :u"), {"u": user_id}
    )
    return list(result.scalars())
