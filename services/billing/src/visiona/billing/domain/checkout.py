"""What a Checkout Session sells, priced by the catalogue."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from visiona.billing.domain.catalog import Catalog, Pack
from visiona.kit.errors import InvalidArgument, NotFound


@dataclass(frozen=True)
class CheckoutSession:
    id: str
    url: str
    expires_at: datetime | None


@dataclass(frozen=True)
class CheckoutItem:
    """A pack or a plan as a session sells it: Stripe's price, the credits (a plan's per
    month) and the amount, in the catalogue's currency."""

    kind: str  # pack | plan
    item_id: str
    stripe_price: str
    credits: int
    amount: int


def checkout_item(catalog: Catalog, kind: str, item_id: str) -> CheckoutItem:
    if kind == "pack":
        pack = catalog.pack(item_id)
        if pack is None:
            raise NotFound(f"no credit pack {item_id!r}", code="pack_not_found")
        return CheckoutItem(kind, item_id, pack.stripe_price, pack.credits, pack.unit_amount)
    if kind == "plan":
        plan = catalog.plan(item_id)
        if plan is None:
            raise NotFound(f"no plan {item_id!r}", code="plan_not_found")
        return CheckoutItem(
            kind, item_id, plan.stripe_price, plan.monthly_credits, plan.unit_amount
        )
    raise InvalidArgument("kind must be pack or plan", code="checkout_kind_invalid")


@dataclass(frozen=True)
class SoldItem:
    """What billing recorded a session sells (a ``checkout_sessions`` row)."""

    kind: str
    item_id: str
    credits: int


@dataclass(frozen=True)
class RecoveredSession:
    kind: str
    item_id: str
    credits: int
    amount: int
    currency: str


def recover_session(
    catalog: Catalog, session: dict[str, Any], user_id: str
) -> RecoveredSession | None:
    """What a Stripe Checkout Session billing has no row of sells: billing crashed between
    creating it and recording it. Only our secret key creates sessions in our account, so its
    metadata (set at creation) says what was bought, priced by our catalogue; None when the
    metadata is not the user's or names nothing the catalogue sells."""
    metadata = session.get("metadata") or {}
    if metadata.get("user_id") != user_id or session.get("client_reference_id") != user_id:
        return None
    kind, item_id = metadata.get("kind"), str(metadata.get("item_id") or "")
    item = catalog.pack(item_id) if kind == "pack" else catalog.plan(item_id)
    if item is None:
        return None
    credits = item.credits if isinstance(item, Pack) else item.monthly_credits
    return RecoveredSession(
        kind=str(kind),
        item_id=item_id,
        credits=credits,
        amount=int(session.get("amount_total") or 0),
        currency=str(session.get("currency") or catalog.currency),
    )
