"""Request and response bodies of credits, plans, checkout, the portal and usage
(routes/billing.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from visiona.billing.v1 import billing_pb2
from visiona.gateway.clients import EnumStrings, optional_time
from visiona.gateway.edge.inputs import RequestBody
from visiona.kit import protoenum


class Balance(BaseModel):
    """The caller's credits, exact at the time of the call."""

    balance: int = Field(description="Credits owned")
    held: int = Field(description="Credits reserved by running jobs")
    available: int = Field(description="balance - held: what a new job may use")


class LedgerEntry(BaseModel):
    id: int
    kind: Annotated[str, EnumStrings(billing_pb2.LedgerEntryKind)]
    delta_balance: int
    delta_held: int
    balance_after: int
    available_after: int
    reference: str | None
    reason: str | None
    created_at: datetime

    @classmethod
    def from_proto(cls, e: billing_pb2.LedgerEntry) -> LedgerEntry:
        return cls(
            id=e.id,
            kind=protoenum.to_string(billing_pb2.LedgerEntryKind, e.kind),
            delta_balance=e.delta_balance,
            delta_held=e.delta_held,
            balance_after=e.balance_after,
            available_after=e.available_after,
            reference=e.reference or None,
            reason=e.reason or None,
            created_at=e.created_at.ToDatetime(tzinfo=UTC),
        )


class LedgerPage(BaseModel):
    entries: list[LedgerEntry]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page")


class Limits(BaseModel):
    max_concurrent_trainings: int
    max_stored_models: int
    max_concurrent_generations: int

    @classmethod
    def from_proto(cls, limits: billing_pb2.Limits) -> Limits:
        return cls(
            max_concurrent_trainings=limits.max_concurrent_trainings,
            max_stored_models=limits.max_stored_models,
            max_concurrent_generations=limits.max_concurrent_generations,
        )


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

    @classmethod
    def from_proto(cls, ent: billing_pb2.GetEntitlementsResponse) -> Entitlements:
        return cls(
            plan_id=ent.plan_id or None,
            status=ent.status,
            cancel_at_period_end=ent.cancel_at_period_end,
            current_period_end=optional_time(ent, "current_period_end"),
            limits=Limits.from_proto(ent.limits),
        )

    @classmethod
    def free_tier(cls, free_limits: Limits) -> Entitlements:
        """What a caller without a session has: what billing answers for a user who never
        subscribed (service.entitlements)."""
        return cls(
            plan_id=None,
            status="none",
            cancel_at_period_end=False,
            current_period_end=None,
            limits=free_limits,
        )


class Catalogue(BaseModel):
    packs: list[Pack]
    plans: list[Plan]
    prices: Prices
    free_limits: Limits
    current: Entitlements = Field(
        description="The caller's plan and limits; without a session token, the free tier "
        "(`plan_id` null, `status` `none`, `current_period_end` null, `limits` = `free_limits`)"
    )

    @classmethod
    def from_proto(
        cls, plans: billing_pb2.ListPlansResponse, current: Entitlements | None
    ) -> Catalogue:
        """The catalogue with the caller's entitlements (None: no caller, the free tier)."""
        free_limits = Limits.from_proto(plans.free_limits)
        return cls(
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
                    limits=Limits.from_proto(p.limits),
                )
                for p in plans.plans
            ],
            prices=Prices(
                training=plans.prices.training, generation_image=plans.prices.generation_image
            ),
            free_limits=free_limits,
            current=current or Entitlements.free_tier(free_limits),
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


class Usage(BaseModel):
    """Usage billing has recorded for the caller (from events, so it may lag a moment)."""

    enhancements: int
    llm_tokens: int
