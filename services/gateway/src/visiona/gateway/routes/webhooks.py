"""Provider webhooks: verified on the raw body, stored, answered fast.

``/webhooks/replicate`` hands the body and the Standard Webhooks headers to training, which
verifies them (5-minute tolerance), records the ``webhook-id`` and applies the update.

``/webhooks/stripe`` hands the body and ``Stripe-Signature`` to billing unchanged; billing
verifies them (current and previous signing secret), stores the event under its id and
applies it asynchronously. A bad signature is 400 and nothing is stored; a redelivery is 200.

``/webhooks/clerk`` is Clerk's user lifecycle (Svix-signed): the gateway owns accounts, so it
verifies the body itself (visiona.gateway.providers.clerk) and applies the event
(visiona.gateway.account.accounts).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

import grpc
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse

from visiona.billing.v1 import billing_pb2
from visiona.gateway.account import accounts
from visiona.gateway.backplane import Backplane
from visiona.gateway.clients import user_call
from visiona.gateway.edge.openapi import problems
from visiona.gateway.edge.problems import problem
from visiona.gateway.providers import clerk
from visiona.gateway.schemas.webhooks import Received
from visiona.generation.v1 import generation_pb2
from visiona.kit import metrics
from visiona.kit.errors import limit_text
from visiona.kit.grpcserver import ERROR_CODE_KEY
from visiona.training.v1 import training_pb2

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


# The body is read raw (signatures cover its exact bytes), so FastAPI cannot see it: described
# here for the document, and so that fuzzing sends one.
_RAW_EVENT: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "object", "description": "The provider's event, as signed"}
            }
        },
    }
}


def _refused(not_what: str) -> dict[int, str | None]:
    """What every webhook answers a delivery it does not take (the sender's fault: 4xx)."""
    return {400: f"Missing or invalid signature, or {not_what}", 413: "Body too large"}


@router.post(
    "/stripe",
    response_model=Received,
    responses=problems({**_refused("not an event"), 503: "Not stored; Stripe will retry"}),
    summary="Stripe webhook endpoint (signed by Stripe)",
    openapi_extra=_RAW_EVENT,
    operation_id="receiveStripeWebhook",
)
async def stripe_webhook(
    request: Request,
    signature: Annotated[str | None, Header(alias="Stripe-Signature")] = None,
) -> JSONResponse | Received:
    backends, call = user_call(request, None)

    async def ingest(payload: bytes) -> Received:
        r = await backends.billing.IngestStripeEvent(
            billing_pb2.IngestStripeEventRequest(payload=payload, signature=signature), **call
        )
        return Received(received=True, event_id=r.event_id, duplicate=r.duplicate)

    return await _receive(
        request,
        "stripe",
        None if signature else "missing Stripe-Signature header",
        backends.settings.webhook_max_bytes,
        ingest,
    )


@router.post(
    "/replicate",
    response_model=Received,
    responses=problems({**_refused("not a job"), 503: "Not stored; Replicate will retry"}),
    summary="Replicate webhook endpoint (Standard Webhooks signature)",
    openapi_extra=_RAW_EVENT,
    operation_id="receiveReplicateWebhook",
)
async def replicate_webhook(
    request: Request,
    service: Literal["training", "generation"] = Query(
        default="training",
        description="Which service's job this is: trainings post without it, "
        "generations with `service=generation` (set in the webhook URL we give Replicate)",
    ),
    webhook_id: Annotated[str | None, Header(alias="webhook-id")] = None,
    timestamp: Annotated[str | None, Header(alias="webhook-timestamp")] = None,
    signature: Annotated[str | None, Header(alias="webhook-signature")] = None,
) -> JSONResponse | Received:
    backends, call = user_call(request, None)

    async def ingest(payload: bytes) -> Received:
        fields: dict[str, Any] = {
            "payload": payload,
            "webhook_id": webhook_id,
            "webhook_timestamp": timestamp,
            "webhook_signature": signature,
        }
        if service == "generation":
            r = await backends.generation.IngestReplicateWebhook(
                generation_pb2.IngestReplicateWebhookRequest(**fields), **call
            )
        else:
            r = await backends.training.IngestReplicateWebhook(
                training_pb2.IngestReplicateWebhookRequest(**fields), **call
            )
        return Received(received=True, event_id=r.webhook_id, duplicate=r.duplicate)

    return await _receive(
        request,
        "replicate",
        None
        if webhook_id and timestamp and signature
        else "missing webhook-id, -timestamp or -signature",
        backends.settings.replicate_webhook_max_bytes,
        ingest,
    )


@router.post(
    "/clerk",
    response_model=Received,
    responses=problems(_refused("not an event")),
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

    async def ingest(body: bytes) -> Received:
        headers = {
            "svix-id": svix_id or "",
            "svix-timestamp": svix_timestamp or "",
            "svix-signature": svix_signature or "",
        }
        event = clerk.verify(settings, body, headers)
        outcome = await accounts.ingest(backplane.db, settings, headers["svix-id"], event)
        return Received(received=True, event_id=outcome.svix_id, duplicate=outcome.duplicate)

    return await _receive(
        request,
        "clerk",
        None
        if svix_id and svix_timestamp and svix_signature
        else "missing svix-id, svix-timestamp or svix-signature",
        settings.webhook_max_bytes,
        ingest,
    )


async def _receive(
    request: Request,
    provider: str,
    missing: str | None,
    limit: int,
    ingest: Callable[[bytes], Awaitable[Received]],
) -> JSONResponse | Received:
    """Every webhook's delivery: 400 without its signature headers (``missing`` says which),
    413 past ``limit``, then ``ingest`` verifies and stores the raw body. A refusal of it is
    400: signature and shape problems are the sender's (providers expect a 4xx, and retry on
    5xx). Each verdict is counted (``visiona_webhook_verifications_total``); a delivery we
    could not store (a service unavailable) got none and is not counted."""
    verifications = metrics.webhook_verifications
    if missing:
        verifications.labels(provider, "missing_signature").inc()
        return problem(request, 400, "signature_missing", missing)
    body = await _read_body(request, limit)
    if isinstance(body, JSONResponse):
        verifications.labels(provider, "too_large").inc()
        return body
    try:
        received = await ingest(body)
    except clerk.InvalidClerkWebhook as exc:
        verifications.labels(provider, "invalid").inc()
        return problem(request, 400, exc.code, exc.detail)
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
            verifications.labels(provider, "invalid").inc()
            return problem(request, 400, _code(exc), exc.details() or "invalid webhook")
        raise
    verifications.labels(provider, "valid").inc()
    return received


async def _read_body(request: Request, limit: int) -> bytes | JSONResponse:
    """The raw body, read at most to ``limit`` whatever the sender claims (a chunked body
    has no length): 413 beyond it."""
    too_large = f"the body is over the limit of {limit_text(limit)}"
    if int(request.headers.get("content-length") or 0) > limit:
        return problem(request, 413, "payload_too_large", too_large, max_bytes=limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return problem(request, 413, "payload_too_large", too_large, max_bytes=limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _code(exc: grpc.aio.AioRpcError) -> str:
    for key, value in exc.trailing_metadata() or ():
        if key == ERROR_CODE_KEY:
            return value.decode() if isinstance(value, bytes) else str(value)
    return "invalid_webhook"
