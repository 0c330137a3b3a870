"""``audit_log``: security-relevant actions on an account (see visiona.gateway.account.audit)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from visiona.kit.db import UnitOfWork

_INSERT = sa.text(
    "INSERT INTO audit_log (id, user_id, actor, action, ip_hash, request_id, details) "
    "VALUES (:id, :user_id, :actor, :action, :ip_hash, :request_id, CAST(:details AS jsonb))"
)
_PAGE = (
    "SELECT id, at, actor, action, request_id, details FROM audit_log "
    "WHERE user_id = :user_id {after} ORDER BY at DESC, id DESC LIMIT :n"
)


@dataclass(frozen=True)
class Entry:
    id: uuid.UUID
    at: datetime
    actor: str
    action: str
    request_id: str | None
    details: dict[str, Any]


async def insert(
    uow: UnitOfWork,
    *,
    user_id: str | None,
    actor: str,
    action: str,
    ip_hash: str | None,
    request_id: str | None,
    details: Mapping[str, Any],
) -> None:
    await uow.session.execute(
        _INSERT,
        {
            "id": uuid.uuid4(),
            "user_id": user_id,
            "actor": actor,
            "action": action,
            "ip_hash": ip_hash,
            "request_id": request_id,
            "details": json.dumps(dict(details), default=str),
        },
    )


async def page(
    uow: UnitOfWork, user_id: str, after: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[Entry]:
    """The user's entries, newest first, after the cursor position."""
    params: dict[str, Any] = {"user_id": user_id, "n": limit}
    clause = ""
    if after is not None:
        clause = "AND (at, id) < (:after_at, :after_id)"
        params |= {"after_at": after[0], "after_id": after[1]}
    rows = await uow.session.execute(sa.text(_PAGE.format(after=clause)), params)
    return [Entry(r.id, r.at, r.actor, r.action, r.request_id, dict(r.details or {})) for r in rows]


async def for_export(uow: UnitOfWork, user_id: str) -> list[dict[str, Any]]:
    """The user's entries (without the hashed network, which means nothing to them)."""
    result = await uow.session.execute(
        sa.text("SELECT * FROM audit_log WHERE user_id = :u ORDER BY 1"), {"u": user_id}
    )
    return [{k: v for k, v in r._mapping.items() if k != "ip_hash"} for r in result]
