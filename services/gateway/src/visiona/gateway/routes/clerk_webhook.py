"""``POST /webhooks/clerk``: Clerk's user lifecycle (Svix-signed), see visiona.gateway.accounts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse

from visiona.gateway import accounts
from visiona.gateway.backplane import Backplane
from visiona.gateway.problems import Problem, problem
from visiona.gateway.routes.webhooks import _RAW_EVENT, Received, _read_body

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


@router.post(
    "/clerk",
    response_model=Received,
    responses={
        400: {"model": Problem, "description": "Missing or invalid signature, or not an event"},
        413: {"model": Problem, "description": "Body too large"},
    },  # type: ignore[dict-item]
    summary="Clerk webhook endpoint (Svix signature): user.created, user.updated, user.deleted",
    openapi_extra=_RAW_EVENT,
    operation_id="receiveClerkWebhook",
)
async def clerk_webhook(
    request: Request,
    svix_id: Annotated[str | None, Header(alias="svix-id")] = None,
    svix_timestamp: Annotated[str | None, Header(alias="svix-timestamp")] = None,
    svix_signature: Annotated[str | None, Header(alias="svix-signature")] = None,
) -> JSONResponse | Received:
    backplane: Backplane = request.app.state.backplane
    settings = backplane.settings
    if not (svix_id and svix_timestamp and svix_signature):
        return problem(
            request, 400, "signature_missing", "missing svix-id, svix-timestamp or svix-signature"
        )
    body = await _read_body(request, settings.webhook_max_bytes)
    if isinstance(body, JSONResponse):
        return body
    headers = {
        "svix-id": svix_id,
        "svix-timestamp": svix_timestamp,
        "svix-signature": svix_signature,
    }
    try:
        event = accounts.verify(settings, body, headers)
    except accounts.InvalidClerkWebhook as exc:
        return problem(request, 400, exc.code, exc.detail)
    outcome = await accounts.ingest(backplane.db, settings, svix_id, event)
    return Received(received=True, event_id=outcome.svix_id, duplicate=outcome.duplicate)
