"""The credit counters (visiona.kit.metrics): each new ledger movement once, after the unit
of work that wrote it committed. An idempotent replay (``duplicate``, a hold that existed, a
settlement that changed nothing) and a rolled-back unit count nothing."""

from __future__ import annotations

from visiona.billing.domain.hold import HoldResult, SettleResult
from visiona.billing.domain.ledger import PostResult
from visiona.kit import metrics
from visiona.kit.db import UnitOfWork


def count_grant(uow: UnitOfWork, kind: str, delta: int, result: PostResult) -> None:
    """A credit entry (``purchase``, ``plan_grant``, a positive ``adjustment``)."""
    if result.applied and delta > 0:
        granted = metrics.credits_granted.labels(kind)
        uow.after_commit(lambda: granted.inc(delta))


def count_hold(uow: UnitOfWork, result: HoldResult) -> None:
    if result.created and result.status == "open":
        amount = result.amount
        uow.after_commit(lambda: metrics.credits_held.inc(amount))


def count_settlement(uow: UnitOfWork, result: SettleResult) -> None:
    if not result.changed:
        return
    captured, released = result.captured, result.released

    def count() -> None:
        if captured:
            metrics.credits_captured.inc(captured)
        if released:
            metrics.credits_released.inc(released)

    uow.after_commit(count)
