"""Erasure rounds waiting on Stripe (``erasures``, a row-as-job: see ``account/erasure.py``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from visiona.kit.jobs import JobColumns
from visiona.kit.repository import Repository
from visiona.kit.rows import RowStore


@dataclass
class Erasure(JobColumns):
    """One erasure round waiting on Stripe (a row of ``erasures``)."""

    deletion_id: uuid.UUID
    round: int
    stripe_customer_id: str | None
    removed: int


ERASURES = RowStore("erasures", Erasure)


class ErasureRepository(Repository):
    async def pending(self, user_id: str, deletion_id: uuid.UUID, round_: int) -> uuid.UUID | None:
        found = await self._scalar(
            "SELECT id FROM erasures WHERE user_id = :user AND deletion_id = :d AND round = :r "
            "FOR UPDATE",
            {"user": user_id, "d": deletion_id, "r": round_},
        )
        return found if isinstance(found, uuid.UUID) else None

    async def schedule(
        self,
        *,
        user_id: str,
        deletion_id: uuid.UUID,
        round_: int,
        stripe_customer_id: str | None,
        removed: int,
        work: str,
    ) -> None:
        """The round's row (due now), or what this delivery removed added to the existing one."""
        await self._execute(
            "INSERT INTO erasures AS e (id, user_id, deletion_id, round, stripe_customer_id, "
            "removed, work) VALUES (:id, :user, :d, :r, :customer, :removed, :work) "
            "ON CONFLICT (user_id, deletion_id, round) DO UPDATE SET "
            "removed = e.removed + EXCLUDED.removed, stripe_customer_id = "
            "COALESCE(e.stripe_customer_id, EXCLUDED.stripe_customer_id), "
            "work = EXCLUDED.work, work_after = now(), updated_at = now()",
            {
                "id": uuid.uuid4(),
                "user": user_id,
                "d": deletion_id,
                "r": round_,
                "customer": stripe_customer_id,
                "removed": removed,
                "work": work,
            },
        )

    async def delete(self, erasure_id: uuid.UUID) -> None:
        await self._execute("DELETE FROM erasures WHERE id = :id", {"id": erasure_id})
