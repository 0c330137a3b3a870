"""Credits, the ledger, plans, and Stripe checkout and portal sessions.

Nothing here grants credits: purchases are credited by billing from verified Stripe webhooks
only (``/webhooks/stripe``), never from the browser coming back from Checkout.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from visiona.billing.v1 import billing_pb2
from visiona.gateway import audit
from visiona.gateway.auth import CurrentUser, OptionalUser
from visiona.gateway.clients import Backends, call_metadata
from visiona.gateway.idempotency import scoped_key_of
from visiona.gateway.inputs import RequestBody
from visiona.gateway.problems import Problem
from visiona.kit.idempotency import was_replayed

router = APIRouter(prefix="/billing", tags=["billing"])

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Missing or invalid session token"},
    503: {"model": Problem, "description": "Billing or the payment provider is unavailable"},
}
# What the payment provider's refusals become (billing's stripe_api.domain_error).
PROVIDER_REFUSALS = (
    "or the payment provider refused the request (`stripe_not_configured`, "
    "`stripe_catalog_mismatch`, `stripe_request_refused`, `payment_declined`)"
)
RATE_LIMITED = {
    "model": Problem,
    "description": "The payment provider is rate limiting us (`stripe_rate_limited`)",
}


class Balance(BaseModel):
    """The caller's credits, exact at the time of the call."""

    balance: int = Field(description="Credits owned")
    held: int = Field(description="Credits reserved by running jobs")
    available: int = Field(description="balance - held: what a new job may use")


class LedgerEntry(BaseModel):
    id: int
    kind: Literal[
        "purchase", "plan_grant", "hold", "capture", "release", "refund_clawback", "adjustment"
    ]
    delta_balance: int
    delta_held: int
    balance_after: int
    available_after: int
    reference: str | None
    reason: str | None
    created_at: datetime


class LedgerPage(BaseModel):
    entries: list[LedgerEntry]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page")


class Limits(BaseModel):
    max_concurrent_trainings: int
    max_stored_models: int
    max_concurrent_generations: int


class Pack(BaseModel):
    id: str
    name: str
    credits: int
    unit_amount: int = Field(description="Price in the currency's minor unit (cents)")
    currency: str


class Plan(BaseModel):
    id: str
    name: str
    monthly_credits: int
    unit_amount: int = Field(description="Price per period in the currency's minor unit")
    currency: str
    interval: str
    limits: Limits


class Prices(BaseModel):
    training: int = Field(description="Credits per training")
    generation_image: int = Field(description="Credits per generated image")


class Entitlements(BaseModel):
    plan_id: str | None
    status: str = Field(description="Subscription status, or `none`")
    cancel_at_period_end: bool
    current_period_end: datetime | None
    limits: Limits


class Catalogue(BaseModel):
    packs: list[Pack]
    plans: list[Plan]
    prices: Prices
    free_limits: Limits
    current: Entitlements = Field(
        description="The caller's plan and limits; without a session token, the free tier "
        "(`plan_id` null, `status` `none`, `current_period_end` null, `limits` = `free_limits`)"
    )


class CheckoutRequest(RequestBody):
    kind: Literal["pack", "plan"]
    item_id: str = Field(min_length=1, max_length=64, examples=["starter"])


class CheckoutSession(BaseModel):
    session_id: str
    url: str = Field(description="Stripe's hosted payment page: send the browser there")
    expires_at: datetime | None


class PortalSession(BaseModel):
    url: str = Field(description="Stripe's billing portal: send the browser there")


def _limits(limits: billing_pb2.Limits) -> Limits:
    return Limits(
        max_concurrent_trainings=limits.max_concurrent_trainings,
        max_stored_models=limits.max_stored_models,
        max_concurrent_generations=limits.max_concurrent_generations,
    )


def _backends(request: Request) -> Backends:
    backends: Backends = request.app.state.backends
    return backends


@router.get(
    "/balance",
    response_model=Balance,
    responses=ERRORS,
    summary="The signed-in user's credits",
    operation_id="getBalance",
)
async def get_balance(request: Request, user: CurrentUser) -> Balance:
    backends = _backends(request)
    r = await backends.billing.GetBalance(
        billing_pb2.GetBalanceRequest(),
        timeout=backends.settings.grpc_deadline_s,
        metadata=call_metadata(user.user_id, request.state.request_id),
    )
    return Balance(balance=r.balance, held=r.held, available=r.available)


@router.get(
    "/ledger",
    response_model=LedgerPage,
    responses={**ERRORS, 422: {"model": Problem, "description": "Bad cursor or limit"}},
    summary="The signed-in user's credit movements, newest first",
    operation_id="listLedgerEntries",
)
async def get_ledger(
    request: Request,
    user: CurrentUser,
    cursor: str | None = Query(
        default=None,
        min_length=1,
        max_length=19,
        pattern="^[0-9]+$",
        description="The `next_cursor` of the previous page",
    ),
    limit: int = Query(default=50, ge=1, le=100),
) -> LedgerPage:
    backends = _backends(request)
    r = await backends.billing.ListLedgerEntries(
        billing_pb2.ListLedgerEntriesRequest(page_size=limit, page_token=cursor or ""),
        timeout=backends.settings.grpc_deadline_s,
        metadata=call_metadata(user.user_id, request.state.request_id),
    )
    return LedgerPage(
        entries=[
            LedgerEntry(
                id=e.id,
                kind=e.kind,
                delta_balance=e.delta_balance,
                delta_held=e.delta_held,
                balance_after=e.balance_after,
                available_after=e.available_after,
                reference=e.reference or None,
                reason=e.reason or None,
                created_at=e.created_at.ToDatetime(tzinfo=UTC),
            )
            for e in r.entries
        ],
        next_cursor=r.next_page_token or None,
    )


def _entitlements(ent: billing_pb2.GetEntitlementsResponse) -> Entitlements:
    return Entitlements(
        plan_id=ent.plan_id or None,
        status=ent.status,
        cancel_at_period_end=ent.cancel_at_period_end,
        current_period_end=(
            ent.current_period_end.ToDatetime(tzinfo=UTC)
            if ent.HasField("current_period_end")
            else None
        ),
        limits=_limits(ent.limits),
    )


def _free_tier(free_limits: Limits) -> Entitlements:
    """What a caller without a session has: what billing answers for a user who never
    subscribed (service.entitlements)."""
    return Entitlements(
        plan_id=None,
        status="none",
        cancel_at_period_end=False,
        current_period_end=None,
        limits=free_limits,
    )


@router.get(
    "/plans",
    response_model=Catalogue,
    responses={
        **ERRORS,
        401: {"model": Problem, "description": "A session token that does not verify"},
    },
    summary="Credit packs, plans, job prices, and the caller's current plan",
    description=(
        "Open to anyone: without a session token (the signed-out landing page's pricing) "
        "`current` is the free tier (`plan_id` null, `status` `none`, no period, the "
        "`free_limits`), and the rate limit is the client IP's. A token that is sent must "
        "verify."
    ),
    # Optional authentication: FastAPI states the bearer requirement, and the empty
    # requirement appended here says none will do as well.
    openapi_extra={"security": [{}]},
    operation_id="listPlans",
)
async def get_plans(request: Request, user: OptionalUser) -> Catalogue:
    backends = _backends(request)
    timeout = backends.settings.grpc_deadline_s
    request_id = request.state.request_id
    if user is None:
        # ListPlans reads the catalogue only, for no one in particular: the system
        # principal is who asks. No entitlements to read without a user.
        plans = await backends.billing.ListPlans(
            billing_pb2.ListPlansRequest(),
            timeout=timeout,
            metadata=call_metadata(None, request_id),
        )
        current = _free_tier(_limits(plans.free_limits))
    else:
        metadata = call_metadata(user.user_id, request_id)
        plans, ent = await asyncio.gather(
            backends.billing.ListPlans(
                billing_pb2.ListPlansRequest(), timeout=timeout, metadata=metadata
            ),
            backends.billing.GetEntitlements(
                billing_pb2.GetEntitlementsRequest(), timeout=timeout, metadata=metadata
            ),
        )
        current = _entitlements(ent)
    return Catalogue(
        packs=[
            Pack(
                id=p.id,
                name=p.name,
                credits=p.credits,
                unit_amount=p.unit_amount,
                currency=p.currency,
            )
            for p in plans.packs
        ],
        plans=[
            Plan(
                id=p.id,
                name=p.name,
                monthly_credits=p.monthly_credits,
                unit_amount=p.unit_amount,
                currency=p.currency,
                interval=p.interval,
                limits=_limits(p.limits),
            )
            for p in plans.plans
        ],
        prices=Prices(
            training=plans.prices.training, generation_image=plans.prices.generation_image
        ),
        free_limits=_limits(plans.free_limits),
        current=current,
    )


@router.post(
    "/checkout",
    response_model=CheckoutSession,
    status_code=201,
    responses={
        **ERRORS,
        404: {"model": Problem, "description": "No such pack or plan"},
        409: {
            "model": Problem,
            "description": f"A plan is already active (`plan_already_active`), {PROVIDER_REFUSALS}",
        },
        422: {"model": Problem, "description": "Invalid request"},
        429: RATE_LIMITED,
    },
    summary="Start a Stripe Checkout for a credit pack or a plan",
    operation_id="createCheckoutSession",
)
async def create_checkout(
    body: CheckoutRequest, request: Request, user: CurrentUser
) -> CheckoutSession:
    backends = _backends(request)
    kind = billing_pb2.CHECKOUT_KIND_PACK if body.kind == "pack" else billing_pb2.CHECKOUT_KIND_PLAN
    call = backends.billing.CreateCheckoutSession(
        billing_pb2.CreateCheckoutSessionRequest(kind=kind, item_id=body.item_id),
        timeout=backends.settings.payments_deadline_s,
        metadata=call_metadata(user.user_id, request.state.request_id, scoped_key_of(request)),
    )
    r = await call
    # A retry billing answered with the session its key already opened is not a new checkout.
    if not was_replayed(await call.trailing_metadata()):
        await audit.record_for(
            request,
            user.user_id,
            "billing.checkout_created",
            {"kind": body.kind, "item_id": body.item_id, "session_id": r.session_id},
        )
    return CheckoutSession(
        session_id=r.session_id,
        url=r.url,
        expires_at=r.expires_at.ToDatetime(tzinfo=UTC) if r.HasField("expires_at") else None,
    )


@router.post(
    "/portal",
    response_model=PortalSession,
    status_code=201,
    responses={
        **ERRORS,
        409: {
            "model": Problem,
            "description": f"No billing account yet (`no_billing_account`), {PROVIDER_REFUSALS}",
        },
        429: RATE_LIMITED,
    },
    summary="Open Stripe's billing portal (plan changes, invoices, payment methods)",
    operation_id="createPortalSession",
)
async def create_portal(request: Request, user: CurrentUser) -> PortalSession:
    backends = _backends(request)
    r = await backends.billing.CreatePortalSession(
        billing_pb2.CreatePortalSessionRequest(),
        timeout=backends.settings.payments_deadline_s,
        metadata=call_metadata(user.user_id, request.state.request_id),
    )
    await audit.record_for(request, user.user_id, "billing.portal_opened")
    return PortalSession(url=r.url)
