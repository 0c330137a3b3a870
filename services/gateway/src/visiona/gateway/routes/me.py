"""The signed-in user: who they are, erasing their account, exporting their data."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from visiona.gateway import accounts, audit, erasure, exports
from visiona.gateway.auth import CurrentUser
from visiona.gateway.backplane import Backplane
from visiona.gateway.idempotency import scoped_key_of
from visiona.kit.errors import NotFound, Unavailable
from visiona.kit.paging import parse_id

router = APIRouter(tags=["account"])


class Me(BaseModel):
    """The signed-in user, as their session token states, with the profile Clerk sent us."""

    user_id: str
    session_id: str | None
    authorized_party: str | None
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None


@router.get("/me", response_model=Me, summary="The signed-in user", operation_id="getMe")
async def get_me(user: CurrentUser, request: Request) -> Me:
    backplane: Backplane = request.app.state.backplane
    async with backplane.db.uow(user.user_id) as uow:
        profile = await accounts.profile(uow, user.user_id) or {}
    azp = user.claims.get("azp")
    return Me(
        user_id=user.user_id,
        session_id=user.session_id,
        authorized_party=azp if isinstance(azp, str) else None,
        email=profile.get("email"),
        first_name=profile.get("first_name"),
        last_name=profile.get("last_name"),
    )


# --- erasure ---------------------------------------------------------------------------------

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


@router.delete(
    "/me",
    status_code=202,
    response_model=Deletion,
    summary="Erase the account and all its data (GDPR/CCPA)",
    description="Starts the erasure and answers at once; follow it with GET /v1/me/deletion. "
    "Every service removes the user's rows, files and provider-side artifacts (Replicate "
    "models; the Stripe customer); accounting records the law requires are kept without "
    "anything that identifies the user. Asking again returns the erasure already running.",
    operation_id="deleteAccount",
)
async def delete_me(user: CurrentUser, request: Request, response: Response) -> Deletion:
    backplane: Backplane = request.app.state.backplane
    async with backplane.db.uow(user.user_id) as uow:
        deletion, created = await erasure.request_erasure(
            uow, backplane.settings, user.user_id, source="api"
        )
        if created:
            # Until the erasure ends: its last step deletes the user's audit entries, and the
            # receipt (without the user id) is what stays.
            await audit.record(
                uow,
                action="account.erasure_requested",
                user_id=user.user_id,
                request=request,
                details={"deletion_id": str(deletion.id)},
            )
        await uow.commit()
    response.headers["Location"] = "/v1/me/deletion"
    return Deletion.model_validate(erasure.view(deletion))


@router.get(
    "/me/deletion",
    response_model=Deletion,
    summary="Progress of the account's erasure",
    responses={404: {"description": "No erasure was requested"}},
    operation_id="getAccountDeletion",
)
async def get_deletion(user: CurrentUser, request: Request) -> Deletion:
    backplane: Backplane = request.app.state.backplane
    async with backplane.db.uow(user.user_id) as uow:
        deletion = await erasure.find(uow, user.user_id)
        if deletion is not None:
            return Deletion.model_validate(erasure.view(deletion))
        receipt = await erasure.find_receipt(
            uow, erasure.subject_of(backplane.settings, user.user_id)
        )
    if receipt is None:
        raise NotFound("no erasure of this account was requested", code="deletion_not_found")
    return Deletion.model_validate(erasure.receipt_view(receipt))


# --- export ----------------------------------------------------------------------------------


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


def _export_view(record: exports.Export, backplane: Backplane, *, link: bool) -> Export:
    view = Export(
        id=record.id,
        status=record.status,  # type: ignore[arg-type]
        parts=sorted(record.parts),
        bytes=record.bytes,
        error=record.error,
        requested_at=record.requested_at,
        ready_at=record.ready_at,
        expires_at=record.expires_at,
    )
    if link and record.status == "ready" and record.archive_key and backplane.storage:
        now = datetime.now(UTC)
        ttl = timedelta(seconds=backplane.settings.export_link_ttl_s)
        if record.expires_at is not None:
            ttl = min(ttl, record.expires_at - now)
        if ttl.total_seconds() >= 1:
            view.download_url = backplane.storage.presigned_get(
                record.archive_key,
                expires=ttl,
                response_headers={
                    "response-content-disposition": (
                        f'attachment; filename="visiona-export-{record.id}.zip"'
                    ),
                    "response-content-type": "application/zip",
                },
            )
            view.download_expires_at = now + ttl
    return view


@router.post(
    "/me/export",
    status_code=202,
    response_model=Export,
    summary="Export every record and file of the account as one zip",
    description="Answers at once; the export is ready when GET /v1/me/exports/{export_id} says "
    "`ready` (or `gateway.export.ready.v1` arrives on GET /v1/events). While one export is "
    "being prepared, asking again returns it.",
    operation_id="createExport",
)
async def create_export(user: CurrentUser, request: Request, response: Response) -> Export:
    backplane: Backplane = request.app.state.backplane
    if backplane.exports is None:
        raise Unavailable(
            "exports need object storage, which is not configured", code="exports_unavailable"
        )
    async with backplane.db.uow(user.user_id) as uow:
        record, replayed = await exports.request_export(
            uow, backplane.settings, user.user_id, scoped_key_of(request)
        )
        if not replayed:
            await audit.record(
                uow,
                action="account.export_requested",
                user_id=user.user_id,
                request=request,
                details={"export_id": str(record.id)},
            )
        uow.after_commit(backplane.exports.wake)
        await uow.commit()
    response.headers["Location"] = f"/v1/me/exports/{record.id}"
    return _export_view(record, backplane, link=False)


@router.get(
    "/me/exports",
    response_model=ExportList,
    summary="The account's recent exports",
    operation_id="listExports",
)
async def list_exports(user: CurrentUser, request: Request) -> ExportList:
    backplane: Backplane = request.app.state.backplane
    async with backplane.db.uow(user.user_id) as uow:
        records = await exports.recent(uow, user.user_id)
    return ExportList(exports=[_export_view(r, backplane, link=False) for r in records])


@router.get(
    "/me/exports/{export_id}",
    response_model=Export,
    summary="An export, with a short-lived download link once it is ready",
    operation_id="getExport",
)
async def get_export(export_id: str, user: CurrentUser, request: Request) -> Export:
    backplane: Backplane = request.app.state.backplane
    wanted = parse_id(export_id, "export")
    async with backplane.db.uow(user.user_id) as uow:
        record = await exports.get(uow, wanted)
    if record is None:
        raise NotFound(f"no export {export_id!r}", code="export_not_found")
    view = _export_view(record, backplane, link=True)
    if view.download_url:
        await audit.record_for(
            request, user.user_id, "account.export_link_issued", {"export_id": str(record.id)}
        )
    return view
