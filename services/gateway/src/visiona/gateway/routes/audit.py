"""The signed-in user's own audit log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from visiona.gateway import audit
from visiona.gateway.auth import CurrentUser
from visiona.gateway.inputs import Cursor
from visiona.gateway.problems import Problem
from visiona.kit.db import Database
from visiona.kit.paging import decode_cursor, encode_cursor

router = APIRouter(tags=["account"])


class AuditEntry(BaseModel):
    """One security-relevant action on the account."""

    id: uuid.UUID
    at: datetime
    actor: Literal["user", "system", "operator"] = Field(
        description="Who acted: the user, the platform itself, or an operator (support)"
    )
    action: str = Field(examples=["billing.checkout_created", "credits.adjusted"])
    request_id: str | None = Field(description="The `X-Request-ID` of the request, if any")
    details: dict[str, Any] = Field(description="Ids, kinds and amounts; never personal data")


class AuditPage(BaseModel):
    entries: list[AuditEntry]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page")


@router.get(
    "/me/audit",
    response_model=AuditPage,
    responses={
        401: {"model": Problem, "description": "Missing or invalid session token"},
        422: {"model": Problem, "description": "Bad cursor or limit"},
    },
    summary="Security-relevant actions on the signed-in user's account, newest first",
    operation_id="listAuditEntries",
)
async def list_audit(
    request: Request,
    user: CurrentUser,
    cursor: Cursor = None,
    limit: int = Query(default=50, ge=1, le=100),
) -> AuditPage:
    after = decode_cursor(cursor or "")
    db: Database = request.app.state.backplane.db
    async with db.uow(user.user_id) as uow:
        entries = await audit.page(uow, user.user_id, after, limit + 1)
    more = len(entries) > limit
    entries = entries[:limit]
    return AuditPage(
        entries=[
            AuditEntry(
                id=e.id,
                at=e.at,
                actor=e.actor,  # type: ignore[arg-type]
                action=e.action,
                request_id=e.request_id,
                details=e.details,
            )
            for e in entries
        ],
        next_cursor=encode_cursor(entries[-1].at, entries[-1].id) if more else None,
    )
