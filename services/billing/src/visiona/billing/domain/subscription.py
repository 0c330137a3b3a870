"""A plan subscription, as Stripe last had it, and what it entitles its user to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from visiona.billing.domain.catalog import Catalog, Limits
from visiona.kit.events import PlanChangedV1

# Subscription statuses that keep the plan's entitlements (past_due: Stripe is still retrying).
ENTITLED_STATUSES = ("active", "trialing", "past_due")


@dataclass(frozen=True)
class Subscription:
    plan_id: str | None
    status: str
    cancel_at_period_end: bool
    current_period_end: datetime | None


@dataclass(frozen=True)
class Entitlements:
    plan_id: str | None
    status: str
    cancel_at_period_end: bool
    current_period_end: datetime | None
    limits: Limits

    @property
    def has_plan(self) -> bool:
        """A plan in force: another cannot be bought, only changed (the billing portal)."""
        return self.plan_id is not None and self.status in ENTITLED_STATUSES


def entitlements(current: Subscription | None, catalog: Catalog) -> Entitlements:
    """The user's plan and limits from their current subscription (the entitled one first,
    see the repository); none, or one no longer entitled, gives the free tier's limits."""
    if current is None:
        return Entitlements(None, "none", False, None, catalog.free)
    entitled = current.status in ENTITLED_STATUSES and current.plan_id is not None
    return Entitlements(
        plan_id=current.plan_id,
        status=current.status,
        cancel_at_period_end=current.cancel_at_period_end,
        current_period_end=current.current_period_end,
        limits=catalog.limits_for(current.plan_id if entitled else None),
    )


def plan_change(
    user_id: str, before: tuple[str | None, str] | None, plan_id: str | None, status: str
) -> PlanChangedV1 | None:
    """The event a sync raises when the plan or its status is new (``before``: the stored
    (plan, status), None for a subscription not stored yet)."""
    if before is not None and before == (plan_id, status):
        return None
    return PlanChangedV1(user_id=user_id, plan_id=plan_id, status=status)
