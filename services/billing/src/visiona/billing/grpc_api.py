"""gRPC ↔ service: translation only."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf.message import Message
from pydantic import BaseModel

from visiona.billing.domain.catalog import Catalog, Limits
from visiona.billing.domain.ledger import Entry
from visiona.billing.providers.stripe import WebhookVerifier
from visiona.billing.service import BillingService
from visiona.billing.service.stripe_events import ingest
from visiona.billing.v1 import billing_pb2, billing_pb2_grpc
from visiona.kit import protoenum
from visiona.kit.errors import InvalidArgument
from visiona.kit.grpcserver import current_user_id, require_system, timestamp
from visiona.kit.idempotency import mark_replayed, request_key


def _fields_for(message: type[Message], item: BaseModel) -> dict[str, Any]:
    """The catalogue item's fields that the proto message has, by name (a Stripe price id,
    say, is not one)."""
    return item.model_dump(include=set(message.DESCRIPTOR.fields_by_name))


def entry_message(e: Entry) -> billing_pb2.LedgerEntry:
    return billing_pb2.LedgerEntry(
        id=e.id,
        kind=protoenum.to_proto(billing_pb2.LedgerEntryKind, e.kind),
        delta_balance=e.delta_balance,
        delta_held=e.delta_held,
        balance_after=e.balance_after,
        available_after=e.balance_after - e.held_after,
        reference=e.reference or "",
        reason=e.reason or "",
        created_at=timestamp(e.created_at),
    )


def _limits(limits: Limits) -> billing_pb2.Limits:
    return billing_pb2.Limits(**_fields_for(billing_pb2.Limits, limits))


def plans_response(catalog: Catalog) -> billing_pb2.ListPlansResponse:
    currency = catalog.currency
    return billing_pb2.ListPlansResponse(
        packs=[
            billing_pb2.Pack(**_fields_for(billing_pb2.Pack, p), currency=currency)
            for p in catalog.packs
        ],
        plans=[
            billing_pb2.Plan(
                **_fields_for(billing_pb2.Plan, p), currency=currency, limits=_limits(p)
            )
            for p in catalog.plans
        ],
        prices=billing_pb2.Prices(
            training=catalog.prices.training, generation_image=catalog.prices.generation_image
        ),
        free_limits=_limits(catalog.free),
    )


class BillingServicer(billing_pb2_grpc.BillingServiceServicer):  # type: ignore[misc]
    def __init__(self, service: BillingService, verifier: WebhookVerifier) -> None:
        self.service = service
        self.verifier = verifier
        self._plans = plans_response(service.catalog)

    async def GetUsageSummary(
        self, request: billing_pb2.GetUsageSummaryRequest, context: grpc.aio.ServicerContext
    ) -> billing_pb2.GetUsageSummaryResponse:
        summary = await self.service.usage_summary(current_user_id())
        return billing_pb2.GetUsageSummaryResponse(
            enhancements=summary.enhancements, llm_tokens=summary.llm_tokens
        )

    async def GetBalance(
        self, request: billing_pb2.GetBalanceRequest, context: grpc.aio.ServicerContext
    ) -> billing_pb2.GetBalanceResponse:
        balance = await self.service.balance(current_user_id())
        return billing_pb2.GetBalanceResponse(
            balance=balance.balance, held=balance.held, available=balance.available
        )

    async def ListLedgerEntries(
        self, request: billing_pb2.ListLedgerEntriesRequest, context: grpc.aio.ServicerContext
    ) -> billing_pb2.ListLedgerEntriesResponse:
        entries, token = await self.service.ledger_page(
            current_user_id(), request.page_size, request.page_token
        )
        return billing_pb2.ListLedgerEntriesResponse(
            entries=[entry_message(e) for e in entries], next_page_token=token
        )

    async def ListPlans(
        self, request: billing_pb2.ListPlansRequest, context: grpc.aio.ServicerContext
    ) -> billing_pb2.ListPlansResponse:
        return self._plans

    async def CreateCheckoutSession(
        self,
        request: billing_pb2.CreateCheckoutSessionRequest,
        context: grpc.aio.ServicerContext,
    ) -> billing_pb2.CreateCheckoutSessionResponse:
        session, replayed = await self.service.create_checkout(
            current_user_id(),
            _checkout_kind(request.kind),
            request.item_id,
            request_key(context.invocation_metadata(), request),
        )
        if replayed:
            mark_replayed(context)
        return billing_pb2.CreateCheckoutSessionResponse(
            session_id=session.id, url=session.url, expires_at=timestamp(session.expires_at)
        )

    async def CreatePortalSession(
        self, request: billing_pb2.CreatePortalSessionRequest, context: grpc.aio.ServicerContext
    ) -> billing_pb2.CreatePortalSessionResponse:
        return billing_pb2.CreatePortalSessionResponse(
            url=await self.service.create_portal(current_user_id())
        )

    async def GetEntitlements(
        self, request: billing_pb2.GetEntitlementsRequest, context: grpc.aio.ServicerContext
    ) -> billing_pb2.GetEntitlementsResponse:
        ent = await self.service.entitlements(current_user_id())
        return billing_pb2.GetEntitlementsResponse(
            plan_id=ent.plan_id or "",
            status=ent.status,
            cancel_at_period_end=ent.cancel_at_period_end,
            current_period_end=timestamp(ent.current_period_end),
            limits=_limits(ent.limits),
        )

    async def IngestStripeEvent(
        self, request: billing_pb2.IngestStripeEventRequest, context: grpc.aio.ServicerContext
    ) -> billing_pb2.IngestStripeEventResponse:
        require_system()
        event_id, event_type, duplicate = await ingest(
            self.service.db, self.verifier, request.payload, request.signature
        )
        return billing_pb2.IngestStripeEventResponse(
            event_id=event_id, type=event_type, duplicate=duplicate
        )

    async def AdjustCredits(
        self, request: billing_pb2.AdjustCreditsRequest, context: grpc.aio.ServicerContext
    ) -> billing_pb2.AdjustCreditsResponse:
        require_system()  # operators' tools, never a call made for a user
        result = await self.service.adjust(
            user_id=request.user_id,
            delta=request.delta,
            reason=request.reason,
            actor=request.actor,
            key=request.idempotency_key,
        )
        return billing_pb2.AdjustCreditsResponse(
            applied=result.applied,
            balance=result.balance.balance,
            available=result.balance.available,
        )

    async def GetUserCredits(
        self, request: billing_pb2.GetUserCreditsRequest, context: grpc.aio.ServicerContext
    ) -> billing_pb2.GetUserCreditsResponse:
        require_system()  # an operator's look at a user's credits (the gateway's /v1/admin)
        if not request.user_id:
            raise InvalidArgument("user_id is required", code="user_id_required")
        balance = await self.service.balance(request.user_id)
        entries, token = await self.service.ledger_page(
            request.user_id, request.page_size, request.page_token
        )
        return billing_pb2.GetUserCreditsResponse(
            balance=balance.balance,
            held=balance.held,
            available=balance.available,
            entries=[entry_message(e) for e in entries],
            next_page_token=token,
        )


def _checkout_kind(number: int) -> str:
    """The kind as billing's domain names it; unset or unknown is "" (refused there with
    checkout_kind_invalid)."""
    try:
        return protoenum.to_string(billing_pb2.CheckoutKind, number)
    except ValueError:
        return ""
