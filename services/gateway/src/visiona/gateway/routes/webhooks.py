"""Provider webhooks: verified on the raw body by the owning service, stored, answered fast.

``/webhooks/replicate`` hands the body and the Standard Webhooks headers to training, which
verifies them (5-minute tolerance), records the ``webhook-id`` and applies the update.

``/webhooks/stripe`` hands the body and ``Stripe-Signature`` to billing unchanged; billing
verifies them (current and previous signing secret), stores the event under its id and
applies it asynchronously. A bad signature is 400 and nothing is stored; a redelivery is 200.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Annotated, Any, Literal

import grpc
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from visiona.billing.v1 import billing_pb2
from visiona.gateway.clients import Backends, call_metadata
from visiona.gateway.problems import Problem, problem
from visiona.generation.v1 import generation_pb2
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


class Received(BaseModel):
    received: bool
    event_id: str
    duplicate: bool


@router.post(
    "/stripe",
    response_model=Received,
    responses={
        400: {"model": Problem, "description": "Missing or invalid signature, or not an event"},
        413: {"model": Problem, "description": "Body too large"},
        503: {"model": Problem, "description": "Not stored; Stripe will retry"},
    },  # type: ignore[dict-item]
    summary="Stripe webhook endpoint (signed by Stripe)",
    openapi_extra=_RAW_EVENT,
    operation_id="receiveStripeWebhook",
)
async def stripe_webhook(
    request: Request,
    signature: Annotated[str | None, Header(alias="Stripe-Signature")] = None,
) -> JSONResponse | Received:
    backends: Backends = request.app.state.backends
    if not signature:
        return problem(request, 400, "signature_missing", "missing Stripe-Signature header")
    payload = await _read_body(request, backends.settings.webhook_max_bytes)
    if isinstance(payload, JSONResponse):
        return payload
    result = await _ingest(
        request,
        backends.billing.IngestStripeEvent(
            billing_pb2.IngestStripeEventRequest(payload=payload, signature=signature),
            timeout=backends.settings.grpc_deadline_s,
            metadata=call_metadata(None, request.state.request_id),
        ),
    )
    if isinstance(result, JSONResponse):
        return result
    return Received(received=True, event_id=result.event_id, duplicate=result.duplicate)


@router.post(
    "/replicate",
    response_model=Received,
    responses={
        400: {"model": Problem, "description": "Missing or invalid signature, or not a job"},
        413: {"model": Problem, "description": "Body too large"},
        503: {"model": Problem, "description": "Not stored; Replicate will retry"},
    },  # type: ignore[dict-item]
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
    backends: Backends = request.app.state.backends
    if not (webhook_id and timestamp and signature):
        return problem(
            request, 400, "signature_missing", "missing webhook-id, -timestamp or -signature"
        )
    payload = await _read_body(request, backends.settings.replicate_webhook_max_bytes)
    if isinstance(payload, JSONResponse):
        return payload
    fields: dict[str, Any] = {
        "payload": payload,
        "webhook_id": webhook_id,
        "webhook_timestamp": timestamp,
        "webhook_signature": signature,
    }
    call = {
        "timeout": backends.settings.grpc_deadline_s,
        "metadata": call_metadata(None, request.state.request_id),
    }
    result = await _ingest(
        request,
        backends.generation.IngestReplicateWebhook(
            generation_pb2.IngestReplicateWebhookRequest(**fields), **call
        )
        if service == "generation"
        else backends.training.IngestReplicateWebhook(
            training_pb2.IngestReplicateWebhookRequest(**fields), **call
        ),
    )
    if isinstance(result, JSONResponse):
        return result
    return Received(received=True, event_id=result.webhook_id, duplicate=result.duplicate)


async def _ingest(request: Request, call: Awaitable[Any]) -> Any:
    """The owning service's answer, or 400 when it refused the delivery: signature and shape
    problems are the sender's (providers expect a 4xx, and retry on 5xx)."""
    try:
        return await call
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
            return problem(request, 400, _code(exc), exc.details() or "invalid webhook")
        raise


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
