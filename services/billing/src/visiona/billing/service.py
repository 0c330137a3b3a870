"""Use cases of the billing service."""

from __future__ import annotations

from visiona.billing.domain import UsageSummary
from visiona.billing.repository import UsageRepository
from visiona.kit.db import Database


class BillingService:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def usage_summary(self, user_id: str) -> UsageSummary:
        async with self.db.uow(user_id) as uow:
            return await UsageRepository(uow.session).summary()
