"""Credits, the ledger, plans, usage, and Stripe checkout and portal sessions.

Nothing here grants credits: purchases are credited by billing from verified Stripe webhooks
only (``/webhooks/stripe``), never from the browser coming back from Checkout.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Query, Request

from visiona.billing.v1 import billing_pb2
from visiona.gateway.account import audit
from visiona.gateway.clients import user_call
from visiona.gateway.edge.auth import CurrentUser, OptionalUser
from visiona.gateway.edge.inputs import Limit
from visiona.gateway.edge.openapi import problems, unavailable
from visiona.gateway.schemas.billing import (
    Balance,
    Catalogue,
    CheckoutRequest,
    CheckoutSession,
    Entitlements,
    LedgerPage,
    PortalSession,
    Usage,
)
from visiona.kit import protoenum
from visiona.kit.idempotency import was_replayed

# The back service every route here waits on.
ERRORS = unavailable("Billing or the payment provider is unavailable")
router = APIRouter(prefix="/billing", tags=["billing"], responses=ERRORS)
usage_router = APIRouter(tags=["billing"])

# What the payment provider's refusals become (billing's providers/stripe.py, domain_error).
PROVIDER_REFUSALS = (
    "or the payment provider refused the request (`stripe_not_configured`, "
    "`stripe_catalog_mismatch`, `stripe_request_refused`, `payment_declined`)"
)
RATE_LIMITED = "The payment provider is rate limiting us (`stripe_rate_limited`)"


@router.get(
    "/balance",
    response_model=Balance,
    summary="The signed-in user's credits",
    operation_id="getBalance",
)
async def get_balance(request: Request, user: CurrentUser) -> Balance:
    backends, call = user_call(request, user.user_id)
    r = await backends.billing.GetBalance(billing_pb2.GetBalanceRequest(), **call)
    return Balance.from_proto(r)


@router.get(
    "/ledger",
    response_model=LedgerPage,
    responses=problems({422: "Bad cursor or limit"}),
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
    limit: Limit = 50,
) -> LedgerPage:
    backends, call = user_call(request, user.user_id)
    r = await backends.billing.ListLedgerEntries(
        billing_pb2.ListLedgerEntriesRequest(page_size=limit, page_token=cursor or ""), **call
    )
    return LedgerPage.from_proto(r)


@router.get(
    "/plans",
    response_model=Catalogue,
    responses=problems({401: "A session token that does not verify"}),
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
    if user is None:
        # ListPlans reads the catalogue only, for no one in particular: the system
        # principal is who asks. No entitlements to read without a user.
        backends, call = user_call(request, None)
        plans = await backends.billing.ListPlans(billing_pb2.ListPlansRequest(), **call)
        return Catalogue.from_proto(plans, None)
    backends, call = user_call(request, user.user_id)
    plans, ent = await asyncio.gather(
        backends.billing.ListPlans(billing_pb2.ListPlansRequest(), **call),
        backends.billing.GetEntitlements(billing_pb2.GetEntitlementsRequest(), **call),
    )
    return Catalogue.from_proto(plans, Entitlements.from_proto(ent))


@router.post(
    "/checkout",
    response_model=CheckoutSession,
    status_code=201,
    responses=problems(
        {
            404: "No such pack or plan",
            409: f"A plan is already active (`plan_already_active`), {PROVIDER_REFUSALS}",
            422: "Invalid request",
            429: RATE_LIMITED,
        }
    ),
    summary="Start a Stripe Checkout for a credit pack or a plan",
    operation_id="createCheckoutSession",
)
async def create_checkout(
    body: CheckoutRequest, request: Request, user: CurrentUser
) -> CheckoutSession:
    backends, call = user_call(request, user.user_id, idempotent=True)
    call["timeout"] = backends.settings.payments_deadline_s
    kind = protoenum.to_proto(billing_pb2.CheckoutKind, body.kind)
    pending = backends.billing.CreateCheckoutSession(
        billing_pb2.CreateCheckoutSessionRequest(kind=kind, item_id=body.item_id), **call
    )
    r = await pending
    # A retry billing answered with the session its key already opened is not a new checkout.
    if not was_replayed(await pending.trailing_metadata()):
        await audit.record_for(
            request,
            user.user_id,
            "billing.checkout_created",
            {"kind": body.kind, "item_id": body.item_id, "session_id": r.session_id},
        )
    return CheckoutSession.from_proto(r)


@router.post(
    "/portal",
    response_model=PortalSession,
    status_code=201,
    responses=problems(
        {
            409: f"No billing account yet (`no_billing_account`), {PROVIDER_REFUSALS}",
            429: RATE_LIMITED,
        }
    ),
    summary="Open Stripe's billing portal (plan changes, invoices, payment methods)",
    operation_id="createPortalSession",
)
async def create_portal(request: Request, user: CurrentUser) -> PortalSession:
    backends, call = user_call(request, user.user_id)
    call["timeout"] = backends.settings.payments_deadline_s
    r = await backends.billing.CreatePortalSession(billing_pb2.CreatePortalSessionRequest(), **call)
    await audit.record_for(request, user.user_id, "billing.portal_opened")
    return PortalSession.from_proto(r)


@usage_router.get(
    "/usage",
    response_model=Usage,
    responses=problems({401: None, 503: None}),
    summary="Usage recorded for the signed-in user",
    operation_id="getUsage",
)
async def get_usage(request: Request, user: CurrentUser) -> Usage:
    backends, call = user_call(request, user.user_id)
    r = await backends.billing.GetUsageSummary(billing_pb2.GetUsageSummaryRequest(), **call)
    return Usage.from_proto(r)
