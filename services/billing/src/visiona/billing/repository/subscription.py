"""Plan subscriptions as Stripe last had them (``subscriptions``, user-owned)."""

from __future__ import annotations

from datetime import datetime

from visiona.billing.domain.subscription import ENTITLED_STATUSES, Subscription
from visiona.kit.repository import Repository


class SubscriptionRepository(Repository):
    async def current(self, user_id: str) -> Subscription | None:
        """The user's subscription that entitles them, else the one that ended last."""
        row = await self._first(
            "SELECT plan_id, status, cancel_at_period_end, current_period_end "
            "FROM subscriptions WHERE user_id = :u "
            "ORDER BY (status = ANY(:entitled)) DESC, current_period_end DESC NULLS LAST LIMIT 1",
            {"u": user_id, "entitled": list(ENTITLED_STATUSES)},
        )
        return None if row is None else Subscription(**row._mapping)

    async def plan_and_status(self, subscription_id: str) -> tuple[str | None, str] | None:
        row = await self._first(
            "SELECT plan_id, status FROM subscriptions WHERE id = :id", {"id": subscription_id}
        )
        return None if row is None else (row.plan_id, row.status)

    async def store(
        self,
        *,
        subscription_id: str,
        user_id: str,
        plan_id: str | None,
        status: str,
        cancel_at_period_end: bool,
        current_period_end: datetime | None,
    ) -> None:
        await self._execute(
            "INSERT INTO subscriptions (id, user_id, plan_id, status, cancel_at_period_end, "
            "current_period_end, synced_at) VALUES (:id, :u, :plan, :status, :cape, :end, now()) "
            "ON CONFLICT (id) DO UPDATE SET plan_id = EXCLUDED.plan_id, "
            "status = EXCLUDED.status, cancel_at_period_end = EXCLUDED.cancel_at_period_end, "
            "current_period_end = EXCLUDED.current_period_end, synced_at = now()",
            {
                "id": subscription_id,
                "u": user_id,
                "plan": plan_id,
                "status": status,
                "cape": cancel_at_period_end,
                "end": current_period_end,
            },
        )

    async def entitled_ids(self) -> list[str]:
        """The transaction's user's subscriptions that still entitle them (RLS)."""
        ids = (
            await self._execute(
                "SELECT id FROM subscriptions WHERE status = ANY(:entitled)",
                {"entitled": list(ENTITLED_STATUSES)},
            )
        ).scalars()
        return [str(i) for i in ids]

    async def cancel(self, subscription_id: str) -> tuple[bool, str | None]:
        """Mark it canceled (Stripe no longer has it); (whether it was stored, its plan)."""
        ended = await self._first(
            "UPDATE subscriptions SET status = 'canceled', cancel_at_period_end = false, "
            "synced_at = now() WHERE id = :id RETURNING plan_id",
            {"id": subscription_id},
        )
        return (False, None) if ended is None else (True, ended.plan_id)
