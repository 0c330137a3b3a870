"""Export (``gateway.export.requested.v1``), in the consumer's transaction: the user's account
(balance, held, Stripe customer id), subscriptions, ledger, holds, checkout sessions, payments
(the projection an erasure retains, with its Stripe ids) and usage records as JSON under
``exports/<export_id>/billing/records/``, answered with ``billing.account.exported.v1``.
"""

from __future__ import annotations

from visiona.billing.repository.account import AccountRepository
from visiona.kit.db import UnitOfWork
from visiona.kit.erasure import ExportPart
from visiona.kit.events import BillingAccountExportedV1, ExportRequestedV1
from visiona.kit.logging import get_logger
from visiona.kit.storage import Storage

log = get_logger(__name__)

# What an export holds: (file name, table, order).
_EXPORTED_TABLES = (
    ("account", "accounts", "user_id"),
    ("subscriptions", "subscriptions", "synced_at"),
    ("ledger", "ledger_entries", "id"),
    ("holds", "holds", "created_at"),
    ("checkout_sessions", "checkout_sessions", "created_at"),
    ("usage", "usage_records", "occurred_at"),
)


async def export_account(
    event: ExportRequestedV1, uow: UnitOfWork, storage: Storage | None
) -> None:
    if storage is None:
        raise RuntimeError("billing has no S3 storage configured (BILLING_S3_ENDPOINT)")
    repo = AccountRepository(uow.session)
    part = ExportPart(storage, event.export_id, "billing")
    for name, table, order in _EXPORTED_TABLES:
        await part.add_records(name, await repo.records(table, event.user_id, order))
    await part.add_records("payments", await repo.payments(event.user_id))
    uow.emit(part.done(BillingAccountExportedV1, event.user_id))
    log.info("billing.export_written", objects=part.objects, bytes=part.bytes)
