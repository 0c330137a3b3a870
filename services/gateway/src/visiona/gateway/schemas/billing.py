"""Request and response bodies of credits, plans, checkout, the portal and usage
(routes/billing.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from visiona.billing.v1 import billing_pb2
from visiona.gateway.edge.inputs import RequestBody
from visiona.gateway.schemas import EnumStrings, FromMessage, Page, from_message


class Balance(FromMessage):
    """The caller's credits, exact at the time of the call."""

    balance: int = Field(description="Credits owned")
    held: int = Field(description="Credits reserved by running jobs")
    available: int = Field(description="balance - held: what a new job may use")


class LedgerEntry(FromMessage):
    id: int
    kind: Annotated[str, EnumStrings(billing_pb2.LedgerEntryKind)]
    delta_balance: int
    delta_held: int
    balance_after: int
    available_after: int
    reference: str | None
    reason: str | None
    created_at: datetime


class LedgerPage(Page):
    entries: list[LedgerEntry]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page")


class Limits(FromMessage):
    max_concurrent_trainings: int
    max_stored_models: int
    max_concurrent_generations: int


class Pack(FromMessage):
    id: str
    name: str
    credits: int
    unit_amount: int = Field(description="Price in the currency's minor unit (cents)")
    currency: str


class Plan(FromMessage):
    id: str
    name: str
    monthly_credits: int
    unit_amount: int = Field(description="Price per period in the currency's minor unit")
    currency: str
    interval: str
    limits: Limits


class Prices(FromMessage):
    training: int = Field(description="Credits per training")
    generation_image: int = Field(description="Credits per generated image")


class Entitlements(FromMessage):
    plan_id: str | None
    status: str = Field(description="Subscription status, or `none`")
    cancel_at_period_end: bool
    current_period_end: datetime | None
    limits: Limits

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
        if current is None:
            current = Entitlements.free_tier(Limits.from_proto(plans.free_limits))
        return from_message(cls, plans, current=current)


class CheckoutRequest(RequestBody):
    kind: Annotated[str, EnumStrings(billing_pb2.CheckoutKind)]
    item_id: str = Field(min_length=1, max_length=64, examples=["starter"])


class CheckoutSession(FromMessage):
    session_id: str
    url: str = Field(description="Stripe's hosted payment page: send the browser there")
    expires_at: datetime | None


class PortalSession(FromMessage):
    url: str = Field(description="Stripe's billing portal: send the browser there")


class Usage(FromMessage):
    """Usage billing has recorded for the caller (from events, so it may lag a moment)."""

    enhancements: int
    llm_tokens: int
