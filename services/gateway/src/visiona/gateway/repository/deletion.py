"""``deletions`` (a running erasure: the saga's state and its row-job) and
``deletion_receipts`` (what stays of a completed one, keyed by a keyed hash of the user id);
and the removal of every row of the gateway's schema that names the user."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from visiona.kit.db import UnitOfWork
from visiona.kit.erasure import forget_published_events
from visiona.kit.jobs import JobColumns
from visiona.kit.rows import RowStore


@dataclass
class Deletion(JobColumns):
    subject: str
    source: str
    status: str
    round: int
    answers: dict[str, int]
    removed: int
    clerk_user_deleted: bool
    requested_at: datetime
    round_started_at: datetime | None
    updated_at: datetime


@dataclass(frozen=True)
class Receipt:
    id: uuid.UUID
    source: str
    rounds: int
    removed: int
    requested_at: datetime
    completed_at: datetime


rows = RowStore("deletions", Deletion)


async def load(uow: UnitOfWork, deletion_id: uuid.UUID, *, lock: bool) -> Deletion | None:
    return await rows.load(uow, deletion_id, lock=lock)


async def find(uow: UnitOfWork, user_id: str, *, lock: bool = False) -> Deletion | None:
    return await rows.load(uow, user_id, by="user_id", lock=lock)


async def save(uow: UnitOfWork, row: Deletion, **changes: Any) -> None:
    """Write ``changes`` to the row (``answers`` as JSON) and to ``row``."""
    if "answers" in changes:
        changes["answers"] = json.dumps(changes["answers"])
    await rows.save(uow, row, **changes)
    if "answers" in changes:
        row.answers = json.loads(changes["answers"])


async def insert(
    uow: UnitOfWork,
    *,
    user_id: str,
    subject: str,
    source: str,
    clerk_user_deleted: bool,
) -> bool:
    """Schedule the user's erasure: its journal entry at once (the ``journal`` step then
    schedules the first round after the grace); False when one is already running."""
    created = (
        await uow.session.execute(
            sa.text(
                "INSERT INTO deletions (id, user_id, subject, source, status, clerk_user_deleted,"
                " work, work_after) VALUES (:id, :user, :subject, :source, 'scheduled', :clerk,"
                " 'journal', now()) ON CONFLICT (user_id) DO NOTHING RETURNING id"
            ),
            {
                "id": uuid.uuid4(),
                "user": user_id,
                "subject": subject,
                "source": source,
                "clerk": clerk_user_deleted,
            },
        )
    ).first()
    return created is not None


async def owner_of(uow: UnitOfWork, deletion_id: uuid.UUID) -> str | None:
    """Whose deletion this is (the unit of work acts as the system principal)."""
    owner = (
        await uow.session.execute(
            sa.text("SELECT user_id FROM deletions WHERE id = :id"), {"id": deletion_id}
        )
    ).scalar()
    return str(owner) if owner is not None else None


async def find_receipt(uow: UnitOfWork, subject: str) -> Receipt | None:
    row = (
        await uow.session.execute(
            sa.text(
                "SELECT id, source, rounds, removed, requested_at, completed_at "
                "FROM deletion_receipts WHERE subject = :s"
            ),
            {"s": subject},
        )
    ).first()
    return Receipt(**row._mapping) if row is not None else None


async def complete(uow: UnitOfWork, deletion: Deletion, removed: int) -> None:
    """Replace the deletion by its receipt (the user id goes, the keyed hash stays)."""
    await uow.session.execute(
        sa.text(
            "INSERT INTO deletion_receipts (id, subject, source, rounds, removed,"
            " requested_at) VALUES (:id, :subject, :source, :rounds, :removed,"
            " :requested_at) ON CONFLICT (subject) DO UPDATE SET id = EXCLUDED.id,"
            " source = EXCLUDED.source, rounds = EXCLUDED.rounds,"
            " removed = EXCLUDED.removed, requested_at = EXCLUDED.requested_at,"
            " completed_at = now()"
        ),
        {
            "id": deletion.id,
            "subject": deletion.subject,
            "source": deletion.source,
            "rounds": deletion.round,
            "removed": removed,
            "requested_at": deletion.requested_at,
        },
    )
    await uow.session.execute(sa.text("DELETE FROM deletions WHERE id = :id"), {"id": deletion.id})


# Tables of the gateway's schema that may hold rows of a user, besides the deletion itself.
_USER_TABLES = ("accounts", "idempotency_keys", "audit_log", "exports")


async def forget_gateway_data(uow: UnitOfWork, user_id: str) -> int:
    """Delete every row of the gateway's schema that names ``user_id`` (not the deletion
    itself); returns how many. Published events about the user go too."""
    removed = 0
    for table in _USER_TABLES:
        result = await uow.session.execute(
            sa.text(f"DELETE FROM {table} WHERE user_id = :u"), {"u": user_id}
        )
        removed += int(result.rowcount or 0)
    removed += await forget_published_events(uow, user_id)
    return removed
