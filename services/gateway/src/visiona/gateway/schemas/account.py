"""Response bodies of the signed-in user's account: who they are, its erasure, its exports
and its audit log (routes/account.py)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field


class Me(BaseModel):
    """The signed-in user, as their session token states, with the profile Clerk sent us."""

    user_id: str
    session_id: str | None
    authorized_party: str | None
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    operator: bool = Field(
        description="Whether the caller is an operator (the `/v1/admin` routes answer them; "
        "the web app shows its operator console)"
    )


DeletionStatus = Literal["scheduled", "erasing", "finishing", "completed"]


class Deletion(BaseModel):
    """The erasure of the account. ``scheduled``: requests already running finish first;
    ``erasing``: every service removes the user's data, in rounds until one finds nothing;
    ``finishing``: the sign-in and the gateway's own records go; ``completed``: nothing of the
    user is left (this answer comes from a receipt that does not hold the user id)."""

    id: uuid.UUID
    status: DeletionStatus
    source: Literal["api", "clerk"] = Field(
        description="`api`: DELETE /v1/me; `clerk`: the user was deleted in Clerk"
    )
    round: int
    services: dict[str, Literal["pending", "done"]] = Field(
        description="Per service: done once it reported that nothing of the user is left in "
        "the current round"
    )
    removed: int = Field(description="Rows, objects and provider artifacts removed so far")
    requested_at: datetime
    completed_at: datetime | None


class Export(BaseModel):
    """A zip of every record (JSON) and file of the user. ``collecting``: each service writes
    its part; ``assembling``: the parts are zipped; ``ready``: ``download_url`` works until
    ``download_expires_at`` (ask again for a fresh link) and the archive is kept until
    ``expires_at``."""

    id: uuid.UUID
    status: Literal["collecting", "assembling", "ready", "failed", "expired"]
    parts: list[str] = Field(description="Services whose part is in")
    bytes: int | None
    error: str | None
    requested_at: datetime
    ready_at: datetime | None
    expires_at: datetime | None
    download_url: str | None = None
    download_expires_at: datetime | None = None


class ExportList(BaseModel):
    exports: list[Export]


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
