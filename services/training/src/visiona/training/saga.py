"""Training's side of billing's credit-hold saga, and Replicate webhooks applied.

Credits: ``training.training.requested.v1`` goes out with the new model; billing answers
``billing.credits.reserved.v1`` (the model starts preparing) or ``billing.credits.rejected.v1``
(the model fails, nothing was held). ``billing.hold.expired.v1`` means the job is no longer
paid for: it is stopped. A reservation that arrives after the user canceled is answered with
the outcome again, so billing releases the hold at once instead of at its expiry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from visiona.kit.consumer import EventHandler
from visiona.kit.db import Database, UnitOfWork
from visiona.kit.errors import InvalidArgument
from visiona.kit.events import (
    CreditsRejectedV1,
    CreditsReservedV1,
    Event,
    HoldExpiredV1,
    TrainingCanceledV1,
    TrainingFailedV1,
)
from visiona.kit.logging import get_logger
from visiona.kit.replicate import InvalidWebhook, verify_webhook
from visiona.training.domain import ModelStatus
from visiona.training.models import apply_provider, fail, load, load_by_training, save
from visiona.training.replicate_api import ProviderTraining, ReplicatePort

log = get_logger(__name__)

CREDITS_CONSUMER = "training.credits"


class CreditsSaga:
    def __init__(self, wake: Callable[[], None]) -> None:
        self.wake = wake

    async def reserved(self, event: CreditsReservedV1, uow: UnitOfWork) -> None:
        if event.job_kind != "training":
            return
        model = await load_by_training(uow, event.job_id)
        if model is None:
            log.warning("training.reserved_unknown", training_id=str(event.job_id))
            return
        if model.state is ModelStatus.AWAITING_CREDITS:
            await save(
                uow,
                model,
                status=ModelStatus.PREPARING.value,
                hold_id=event.hold_id,
                work="launch",
                work_after=datetime.now(UTC),
                work_attempts=0,
            )
            self.wake()
        elif model.state is ModelStatus.CANCELED:
            uow.emit(
                TrainingCanceledV1(
                    user_id=model.user_id,
                    training_id=model.training_id,
                    model_id=model.id,
                    reason=model.failure_reason or "canceled",
                )
            )
        elif model.state is ModelStatus.FAILED:
            uow.emit(
                TrainingFailedV1(
                    user_id=model.user_id,
                    training_id=model.training_id,
                    model_id=model.id,
                    reason=model.failure_reason or "failed",
                )
            )

    async def rejected(self, event: CreditsRejectedV1, uow: UnitOfWork) -> None:
        if event.job_kind != "training":
            return
        model = await load_by_training(uow, event.job_id)
        if model is None or model.state is not ModelStatus.AWAITING_CREDITS:
            return
        await fail(
            uow,
            model,
            event.reason,
            f"a training costs {event.required} credits; {event.available} available",
        )

    async def hold_expired(self, event: HoldExpiredV1, uow: UnitOfWork) -> None:
        if event.job_kind != "training":
            return
        model = await load_by_training(uow, event.job_id)
        if model is None:
            return
        if await fail(uow, model, "hold_expired", "the training ran past its paid time"):
            self.wake()

    def handlers(self) -> Mapping[type[Event], EventHandler]:
        return {
            CreditsReservedV1: self.reserved,  # type: ignore[dict-item]
            CreditsRejectedV1: self.rejected,  # type: ignore[dict-item]
            HoldExpiredV1: self.hold_expired,  # type: ignore[dict-item]
        }


class WebhookIngest:
    """Verify a Replicate delivery, record its id (a retry changes nothing) and apply it to
    the model in the same transaction. Answering is fast: copying weights is background work.
    """

    def __init__(
        self,
        db: Database,
        replicate: ReplicatePort,
        tolerance_s: int,
        quiet_s: float,
        wake: Callable[[], None],
    ) -> None:
        self.db = db
        self.replicate = replicate
        self.tolerance_s = tolerance_s
        self.quiet_s = quiet_s
        self.wake = wake

    async def ingest(
        self, *, payload: bytes, webhook_id: str, timestamp: str, signature: str
    ) -> bool:
        """True when the delivery was new."""
        try:
            data: dict[str, Any] = verify_webhook(
                await self.replicate.webhook_secrets(),
                webhook_id=webhook_id,
                timestamp=timestamp,
                signature=signature,
                body=payload,
                tolerance_s=self.tolerance_s,
            )
        except InvalidWebhook as exc:
            log.warning("training.webhook_rejected", code=exc.code)
            raise InvalidArgument(str(exc), code=exc.code) from None
        training = ProviderTraining.from_payload(data)
        async with self.db.uow(system=True) as uow:
            new = (
                await uow.session.execute(
                    sa.text(
                        "INSERT INTO replicate_webhooks (webhook_id, provider_id, status) "
                        "VALUES (:id, :pid, :status) ON CONFLICT DO NOTHING RETURNING 1"
                    ),
                    {"id": webhook_id[:200], "pid": training.id, "status": training.status},
                )
            ).first() is not None
            if not new:
                return False
            found = (
                await uow.session.execute(
                    sa.text("SELECT id, user_id FROM models WHERE provider_training_id = :pid"),
                    {"pid": training.id},
                )
            ).first()
            if found is not None:
                await uow.act_as(found.user_id)
                model = await load(uow, found.id)
                if model is not None:
                    await apply_provider(uow, model, training, self.quiet_s)
            else:
                log.info("training.webhook_unmatched", provider_id=training.id)
            await uow.commit()
        log.info(
            "training.webhook_applied",
            provider_id=training.id,
            status=training.status,
            matched=found is not None,
        )
        self.wake()
        return True


async def forget_old_webhooks(db: Database, older_than_days: int = 7) -> int:
    """Webhook ids are kept for dedup well past any retry schedule, then dropped."""
    async with db.single_statement() as conn:
        cur = await conn.execute(
            "DELETE FROM replicate_webhooks WHERE received_at < now() - make_interval(days => %s)",
            (older_than_days,),
        )
        return cur.rowcount or 0
