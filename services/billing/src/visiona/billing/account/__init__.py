"""Billing's part in the user's erasure and export sagas (contract in ``visiona.kit.events``):
:mod:`.erasure` and :mod:`.export` describe each."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from visiona.billing.account.erasure import ErasureJobs, delete_expired_payments, erase_account
from visiona.billing.account.export import export_account
from visiona.billing.config import BillingSettings
from visiona.kit.consumer import EventHandler
from visiona.kit.db import UnitOfWork
from visiona.kit.events import ErasureRequestedV1, Event, ExportRequestedV1
from visiona.kit.storage import Storage

ACCOUNT_CONSUMER = "billing.account"

__all__ = [
    "ACCOUNT_CONSUMER",
    "AccountData",
    "ErasureJobs",
    "delete_expired_payments",
]


class AccountData:
    """The consumer of both sagas."""

    def __init__(
        self,
        storage: Storage | None,
        jobs: ErasureJobs,
        settings: BillingSettings,
    ) -> None:
        self.storage = storage
        self.jobs = jobs
        self.retain_for = timedelta(days=settings.accounting_retention_days)

    async def erasure_requested(self, event: ErasureRequestedV1, uow: UnitOfWork) -> None:
        await erase_account(event, uow, self.jobs, self.retain_for)

    async def export_requested(self, event: ExportRequestedV1, uow: UnitOfWork) -> None:
        await export_account(event, uow, self.storage)

    def handlers(self) -> Mapping[type[Event], EventHandler]:
        return {
            ErasureRequestedV1: self.erasure_requested,
            ExportRequestedV1: self.export_requested,
        }
