"""What the caller has used."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel

from visiona.billing.v1 import billing_pb2
from visiona.gateway.auth import CurrentUser
from visiona.gateway.clients import Backends, call_metadata
from visiona.gateway.problems import Problem

router = APIRouter(tags=["billing"])


class Usage(BaseModel):
    """Usage billing has recorded for the caller (from events, so it may lag a moment)."""

    enhancements: int
    llm_tokens: int


@router.get(
    "/usage",
    response_model=Usage,
    responses={401: {"model": Problem}, 503: {"model": Problem}},  # type: ignore[dict-item]
    summary="Usage recorded for the signed-in user",
    operation_id="getUsage",
)
async def get_usage(request: Request, user: CurrentUser) -> Usage:
    backends: Backends = request.app.state.backends
    response = await backends.billing.GetUsageSummary(
        billing_pb2.GetUsageSummaryRequest(),
        timeout=backends.settings.grpc_deadline_s,
        metadata=call_metadata(user.user_id, request.state.request_id),
    )
    return Usage(enhancements=response.enhancements, llm_tokens=response.llm_tokens)
