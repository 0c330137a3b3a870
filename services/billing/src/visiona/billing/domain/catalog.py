"""The price list: credit packs, monthly plans, job prices and plan limits, from TOML.

Pure but for :meth:`Catalog.load`, which reads the TOML file once at start-up (the one shipped
next to this module unless ``BILLING_CATALOG_FILE`` names another).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

DEFAULT_CATALOG = Path(__file__).with_name("catalog.toml")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Limits(_Frozen):
    max_concurrent_trainings: int = Field(ge=0)
    max_stored_models: int = Field(ge=0)
    max_concurrent_generations: int = Field(ge=0)


class FreeTier(Limits):
    name: str = "Free"


class _Item(_Frozen):
    """What the catalogue sells, at its Stripe price (``unit_amount`` in the currency's
    minor unit)."""

    id: str
    name: str
    stripe_price: str
    unit_amount: int = Field(ge=0)


class Pack(_Item):
    credits: int = Field(gt=0)


class Plan(_Item, Limits):
    monthly_credits: int = Field(gt=0)
    interval: Literal["month", "year"] = "month"

    @property
    def limits(self) -> Limits:
        return Limits(
            max_concurrent_trainings=self.max_concurrent_trainings,
            max_stored_models=self.max_stored_models,
            max_concurrent_generations=self.max_concurrent_generations,
        )


class Prices(_Frozen):
    training: int = Field(gt=0)
    generation_image: int = Field(gt=0)


class HoldTtl(_Frozen):
    training: int = Field(gt=0)
    generation: int = Field(gt=0)


class Catalog(_Frozen):
    currency: str
    prices: Prices
    hold_ttl_s: HoldTtl
    free: FreeTier
    packs: tuple[Pack, ...]
    plans: tuple[Plan, ...]

    @model_validator(mode="after")
    def _unique(self) -> Catalog:
        ids = [p.id for p in self.packs] + [p.id for p in self.plans]
        prices = [p.stripe_price for p in self.packs] + [p.stripe_price for p in self.plans]
        if len(set(ids)) != len(ids):
            raise ValueError("pack and plan ids must be unique")
        if len(set(prices)) != len(prices):
            raise ValueError("each Stripe price may be used once")
        return self

    @classmethod
    def load(cls, path: Path | None = None) -> Catalog:
        with (path or DEFAULT_CATALOG).open("rb") as f:
            return cls.model_validate(tomllib.load(f))

    def with_hold_ttls(self, *, training_s: int | None, generation_s: int | None) -> Catalog:
        """This catalogue with the hold lifetimes given (None keeps the catalogue's own)."""
        ttl = self.hold_ttl_s.model_copy(
            update={
                k: v
                for k, v in (("training", training_s), ("generation", generation_s))
                if v is not None
            }
        )
        return self.model_copy(update={"hold_ttl_s": ttl})

    def pack(self, pack_id: str) -> Pack | None:
        return next((p for p in self.packs if p.id == pack_id), None)

    def plan(self, plan_id: str) -> Plan | None:
        return next((p for p in self.plans if p.id == plan_id), None)

    def plan_by_price(self, price_id: str) -> Plan | None:
        return next((p for p in self.plans if p.stripe_price == price_id), None)

    def limits_for(self, plan_id: str | None) -> Limits:
        plan = self.plan(plan_id) if plan_id else None
        return plan.limits if plan else self.free

    def stripe_prices(self) -> list[dict[str, object]]:
        """The catalogue as Price seeds for the local Stripe emulator."""
        seeds: list[dict[str, object]] = [
            {
                "id": p.stripe_price,
                "unit_amount": p.unit_amount,
                "currency": self.currency,
                "recurring_interval": None,
                "product_name": p.name,
            }
            for p in self.packs
        ]
        seeds += [
            {
                "id": p.stripe_price,
                "unit_amount": p.unit_amount,
                "currency": self.currency,
                "recurring_interval": p.interval,
                "product_name": p.name,
            }
            for p in self.plans
        ]
        return seeds
