"""The signed-in user: who they are, erasing their account, exporting their data, and the
audit log of their account. These answer from the gateway's own account records
(visiona.gateway.account), not from a back service."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from visiona.gateway.account import accounts, audit, erasure, export
from visiona.gateway.backplane import Backplane
from visiona.gateway.edge.auth import CurrentUser, is_operator
from visiona.gateway.edge.idempotency import scoped_key_of
from visiona.gateway.edge.inputs import Cursor, Limit
from visiona.gateway.edge.openapi import problems
from visiona.gateway.schemas.account import (
    AuditEntry,
    AuditPage,
    Deletion,
    Export,
    ExportList,
    Me,
)
from visiona.kit.errors import NotFound, Unavailable
from visiona.kit.paging import decode_cursor, encode_cursor, parse_id

router = APIRouter(tags=["account"])


def _backplane(request: Request) -> Backplane:
    backplane: Backplane = request.app.state.backplane
    return backplane


@router.get("/me", response_model=Me, summary="The signed-in user", operation_id="getMe")
async def get_me(user: CurrentUser, request: Request) -> Me:
    profile = await accounts.profile(_backplane(request).db, user.user_id)
    azp = user.claims.get("azp")
    return Me(
        user_id=user.user_id,
        session_id=user.session_id,
        authorized_party=azp if isinstance(azp, str) else None,
        email=profile.get("email"),
        first_name=profile.get("first_name"),
        last_name=profile.get("last_name"),
        operator=is_operator(user, request.app.state.settings),
    )


# --- erasure ---------------------------------------------------------------------------------


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
    backplane = _backplane(request)
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
    backplane = _backplane(request)
    progress = await erasure.progress(backplane.db, backplane.settings, user.user_id)
    if progress is None:
        raise NotFound("no erasure of this account was requested", code="deletion_not_found")
    return Deletion.model_validate(progress)


# --- export ----------------------------------------------------------------------------------


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
    backplane = _backplane(request)
    if backplane.exports is None:
        raise Unavailable(
            "exports need object storage, which is not configured", code="exports_unavailable"
        )
    async with backplane.db.uow(user.user_id) as uow:
        record, replayed = await export.request_export(
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
    return Export.model_validate(
        export.view(record, backplane.storage, backplane.settings, link=False)
    )


@router.get(
    "/me/exports",
    response_model=ExportList,
    summary="The account's recent exports",
    operation_id="listExports",
)
async def list_exports(user: CurrentUser, request: Request) -> ExportList:
    backplane = _backplane(request)
    records = await export.recent(backplane.db, user.user_id)
    return ExportList(
        exports=[
            Export.model_validate(export.view(r, backplane.storage, backplane.settings, link=False))
            for r in records
        ]
    )


@router.get(
    "/me/exports/{export_id}",
    response_model=Export,
    summary="An export, with a short-lived download link once it is ready",
    operation_id="getExport",
)
async def get_export(export_id: str, user: CurrentUser, request: Request) -> Export:
    backplane = _backplane(request)
    wanted = parse_id(export_id, "export")
    record = await export.get(backplane.db, user.user_id, wanted)
    if record is None:
        raise NotFound(f"no export {export_id!r}", code="export_not_found")
    view = Export.model_validate(
        export.view(record, backplane.storage, backplane.settings, link=True)
    )
    if view.download_url:
        await audit.record_for(
            request, user.user_id, "account.export_link_issued", {"export_id": str(record.id)}
        )
    return view


# --- audit log -------------------------------------------------------------------------------


@router.get(
    "/me/audit",
    response_model=AuditPage,
    responses=problems({422: "Bad cursor or limit"}),
    summary="Security-relevant actions on the signed-in user's account, newest first",
    operation_id="listAuditEntries",
)
async def list_audit(
    request: Request,
    user: CurrentUser,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> AuditPage:
    after = decode_cursor(cursor or "")
    entries = await audit.page(_backplane(request).db, user.user_id, after, limit + 1)
    more = len(entries) > limit
    entries = entries[:limit]
    return AuditPage(
        entries=[AuditEntry.model_validate(e, from_attributes=True) for e in entries],
        next_cursor=encode_cursor(entries[-1].at, entries[-1].id) if more else None,
    )
