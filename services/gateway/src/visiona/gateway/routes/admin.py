"""The operator console's API (``/v1/admin``): stuck jobs, credits by hand.

Only operators (visiona.gateway.edge.auth.is_operator) reach these routes; anyone else is
answered 404 ``route_not_found``, as for a route that does not exist, before anything else
is read. The back services are called as the system principal (their admin RPCs refuse any
other), every action is in the audit log with the operator and their reason
(visiona.gateway.account.audit.record_operator), and a change without a reason is 422
``reason_required``. POSTs honour ``Idempotency-Key`` (the edge's middleware replays them);
a credit change passes it on to billing as well, which applies one key once.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from visiona.admin.v1 import admin_pb2, admin_pb2_grpc
from visiona.billing.v1 import billing_pb2
from visiona.gateway.account import audit
from visiona.gateway.clients import Backends, user_call
from visiona.gateway.edge.auth import CurrentOperator, operator
from visiona.gateway.edge.inputs import Cursor, Limit
from visiona.gateway.edge.openapi import INVALID, problems, unavailable
from visiona.gateway.schemas.admin import (
    AdminJob,
    AdminJobPage,
    CreditAdjustment,
    CreditChange,
    FailedJob,
    JobKind,
    ListedKind,
    Reason,
    UserLookup,
)
from visiona.gateway.schemas.billing import Balance, LedgerEntry
from visiona.kit.errors import InvalidArgument

NOT_FOUND = "Not an operator (as for a route that does not exist), or no such job"
router = APIRouter(
    prefix="/admin",
    tags=["admin"],
    # Before anything else: who is not an operator learns nothing, not even a 422.
    dependencies=[Depends(operator)],
    responses=unavailable("A back service is unavailable") | problems({404: NOT_FOUND}),
)

UserId = Annotated[
    str, Path(min_length=1, max_length=128, pattern="^[A-Za-z0-9_-]+$", description="Clerk id")
]
JobId = Annotated[str, Path(min_length=1, max_length=64, description="The job's id")]
REASONED = problems({422: "Invalid request, or no `reason` (`reason_required`)"})


def reason_of(body: Reason) -> str:
    reason = (body.reason or "").strip()
    if not reason:
        raise InvalidArgument("say why: `reason` is required", code="reason_required")
    return reason


def _jobs(backends: Backends, kind: str) -> admin_pb2_grpc.JobAdminServiceStub:
    """The service whose jobs ``kind`` names (``generation_ingest``: generations at a step)."""
    return backends.jobs["training" if kind == "training" else "generation"]


@router.get(
    "/jobs",
    response_model=AdminJobPage,
    responses=problems({422: INVALID}),
    summary="Jobs of every user that have not ended and are older than an age",
    description=(
        "`training`: models being trained; `generation`: generations; `generation_ingest`: generations "
        "whose outputs are being copied into our storage. Newest first. Audited "
        "(`admin.jobs.listed`, about no user)."
    ),
    operation_id="adminListStuckJobs",
)
async def list_stuck_jobs(
    request: Request,
    op: CurrentOperator,
    kind: Annotated[ListedKind, Query(description="Which jobs")],
    older_than_s: Annotated[
        int, Query(ge=0, le=366 * 24 * 3600, description="Created more than this long ago")
    ] = 600,
    reason: Annotated[str | None, Query(max_length=500, description="Why (audited)")] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> AdminJobPage:
    backends, call = user_call(request, None)
    listed_as: JobKind = "training" if kind == "training" else "generation"
    r = await _jobs(backends, kind).ListStuckJobs(
        admin_pb2.ListStuckJobsRequest(
            older_than_s=older_than_s,
            work="ingest" if kind == "generation_ingest" else "",
            page_size=limit,
            page_token=cursor or "",
        ),
        **call,
    )
    await audit.record_operator(
        request,
        op.user_id,
        "admin.jobs.listed",
        user_id=None,
        reason=reason,
        details={"kind": kind, "older_than_s": older_than_s, "count": len(r.jobs)},
    )
    return AdminJobPage(
        jobs=[AdminJob.of(listed_as, j) for j in r.jobs], next_cursor=r.next_page_token or None
    )


@router.post(
    "/jobs/{kind}/{job_id}/retry",
    response_model=AdminJob,
    responses=REASONED | problems({409: "The job has ended (`job_finished`)"}),
    summary="Put a job back to work: its next step due now, its attempts counted afresh",
    operation_id="adminRetryJob",
)
async def retry_job(
    kind: JobKind, job_id: JobId, body: Reason, request: Request, op: CurrentOperator
) -> AdminJob:
    reason = reason_of(body)
    backends, call = user_call(request, None)
    r = await _jobs(backends, kind).RetryJob(admin_pb2.RetryJobRequest(job_id=job_id), **call)
    await audit.record_operator(
        request,
        op.user_id,
        "admin.job.retried",
        user_id=r.job.user_id,
        reason=reason,
        details={"kind": kind, "job_id": r.job.id, "work": r.job.work},
    )
    return AdminJob.of(kind, r.job)


@router.post(
    "/jobs/{kind}/{job_id}/fail",
    response_model=FailedJob,
    responses=REASONED,
    summary="End a job as failed; billing releases the credits it held",
    description=(
        "The job fails with the reason `operator_failed` and its failure event goes out like "
        "any job's: billing releases its hold once. A job that already ended is left as it "
        "is (`failed`: false)."
    ),
    operation_id="adminFailJob",
)
async def fail_job(
    kind: JobKind, job_id: JobId, body: Reason, request: Request, op: CurrentOperator
) -> FailedJob:
    reason = reason_of(body)
    backends, call = user_call(request, None)
    r = await _jobs(backends, kind).FailJob(admin_pb2.FailJobRequest(job_id=job_id), **call)
    await audit.record_operator(
        request,
        op.user_id,
        "admin.job.failed",
        user_id=r.job.user_id,
        reason=reason,
        details={"kind": kind, "job_id": r.job.id, "failed": r.failed},
    )
    return FailedJob(job=AdminJob.of(kind, r.job), failed=r.failed)


async def _adjust(
    request: Request, op_id: str, user_id: str, delta: int, reason: str, action: str
) -> CreditAdjustment:
    backends, call = user_call(request, None)
    # One Idempotency-Key applies once in billing too (scoped to the operator); without one,
    # each request is its own adjustment.
    key = request.headers.get("idempotency-key")
    scoped = audit.operator_ref(request, f"{op_id}:{key}") if key else None
    r = await backends.billing.AdjustCredits(
        billing_pb2.AdjustCreditsRequest(
            user_id=user_id,
            delta=delta,
            reason=reason,
            actor=f"operator:{audit.operator_ref(request, op_id)}",
            idempotency_key=scoped or f"once:{uuid.uuid4()}",
        ),
        **call,
    )
    await audit.record_operator(
        request,
        op_id,
        action,
        user_id=user_id,
        reason=reason,
        details={"amount": abs(delta), "applied": r.applied, "balance": r.balance},
    )
    return CreditAdjustment(applied=r.applied, balance=r.balance, available=r.available)


@router.post(
    "/users/{user_id}/credits/grant",
    response_model=CreditAdjustment,
    responses=REASONED,
    summary="Grant a user credits (a ledger entry of kind `adjustment`)",
    operation_id="adminGrantCredits",
)
async def grant_credits(
    user_id: UserId, body: CreditChange, request: Request, op: CurrentOperator
) -> CreditAdjustment:
    reason = reason_of(body)
    return await _adjust(request, op.user_id, user_id, body.amount, reason, "admin.credits.granted")


@router.post(
    "/users/{user_id}/credits/clawback",
    response_model=CreditAdjustment,
    responses=REASONED
    | problems({409: "More than the user's available credits (`insufficient_credits`)"}),
    summary="Take credits back from a user (never below zero available)",
    operation_id="adminClawBackCredits",
)
async def claw_back_credits(
    user_id: UserId, body: CreditChange, request: Request, op: CurrentOperator
) -> CreditAdjustment:
    reason = reason_of(body)
    return await _adjust(
        request, op.user_id, user_id, -body.amount, reason, "admin.credits.clawed_back"
    )


@router.get(
    "/users/{user_id}",
    response_model=UserLookup,
    responses=REASONED,
    summary="A user's credits and ledger, and their models' and generations' states",
    description=(
        "Metadata only: no photo, image, prompt or URL. Needs `reason` (422 "
        "`reason_required`); audited in the user's own log (`admin.user.viewed`)."
    ),
    operation_id="adminLookUpUser",
)
async def look_up_user(
    user_id: UserId,
    request: Request,
    op: CurrentOperator,
    reason: Annotated[str | None, Query(max_length=500, description="Why (required)")] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Items per list")] = 20,
    ledger_cursor: Cursor = None,
    models_cursor: Cursor = None,
    generations_cursor: Cursor = None,
) -> UserLookup:
    why = reason_of(Reason(reason=reason))
    # Recorded before anything is read: no look at a user's data goes unaudited.
    await audit.record_operator(
        request, op.user_id, "admin.user.viewed", user_id=user_id, reason=why
    )
    backends, call = user_call(request, None)

    def jobs_of(cursor: str | None) -> admin_pb2.ListUserJobsRequest:
        return admin_pb2.ListUserJobsRequest(
            user_id=user_id, page_size=limit, page_token=cursor or ""
        )

    credits, models, generations = await asyncio.gather(
        backends.billing.GetUserCredits(
            billing_pb2.GetUserCreditsRequest(
                user_id=user_id, page_size=limit, page_token=ledger_cursor or ""
            ),
            **call,
        ),
        backends.jobs["training"].ListUserJobs(jobs_of(models_cursor), **call),
        backends.jobs["generation"].ListUserJobs(jobs_of(generations_cursor), **call),
    )
    return UserLookup(
        user_id=user_id,
        credits=Balance.from_proto(credits),
        ledger=[LedgerEntry.from_proto(e) for e in credits.entries],
        ledger_next_cursor=credits.next_page_token or None,
        models=[AdminJob.of("training", j) for j in models.jobs],
        models_next_cursor=models.next_page_token or None,
        generations=[AdminJob.of("generation", j) for j in generations.jobs],
        generations_next_cursor=generations.next_page_token or None,
    )
