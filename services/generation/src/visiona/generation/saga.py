"""Generation's side of billing's credit-hold saga, and Replicate prediction webhooks.

``generation.generation.requested.v1`` goes out with the new generation; billing answers
``billing.credits.reserved.v1`` (launch) or ``billing.credits.rejected.v1`` (fail, nothing
held). ``billing.hold.expired.v1`` stops a generation that outlived its hold. A reservation
that arrives after a cancel is answered with the outcome again, so billing releases at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from visiona.generation.domain import GenerationStatus
from visiona.generation.generations import apply_provider, fail, load, save
from visiona.generation.replicate_api import PredictionsPort, ProviderPrediction
from visiona.kit.consumer import EventHandler
from visiona.kit.db import Database, UnitOfWork
from visiona.kit.events import (
    CreditsRejectedV1,
    CreditsReservedV1,
    Event,
    GenerationCanceledV1,
    GenerationFailedV1,
    HoldExpiredV1,
)
from visiona.kit.logging import get_logger
from visiona.kit.replicate import WebhookInbox

log = get_logger(__name__)

CREDITS_CONSUMER = "generation.credits"


class CreditsSaga:
    def __init__(self, wake: Callable[[], None]) -> None:
        self.wake = wake

    async def reserved(self, event: CreditsReservedV1, uow: UnitOfWork) -> None:
        if event.job_kind != "generation":
            return
        gen = await load(uow, event.job_id)
        if gen is None:
            log.warning("generation.reserved_unknown", generation_id=str(event.job_id))
            return
        if gen.state is GenerationStatus.AWAITING_CREDITS:
            await save(
                uow,
                gen,
                status=GenerationStatus.QUEUED.value,
                hold_id=event.hold_id,
                work="launch",
                work_after=datetime.now(UTC),
                work_attempts=0,
            )
            uow.after_commit(self.wake)
        elif gen.state is GenerationStatus.CANCELED:
            uow.emit(
                GenerationCanceledV1(
                    user_id=gen.user_id,
                    generation_id=gen.id,
                    reason=gen.failure_reason or "canceled",
                    delivered=gen.delivered,
                )
            )
        elif gen.state is GenerationStatus.FAILED:
            uow.emit(
                GenerationFailedV1(
                    user_id=gen.user_id,
                    generation_id=gen.id,
                    reason=gen.failure_reason or "failed",
                    delivered=gen.delivered,
                )
            )

    async def rejected(self, event: CreditsRejectedV1, uow: UnitOfWork) -> None:
        if event.job_kind != "generation":
            return
        gen = await load(uow, event.job_id)
        if gen is None or gen.state is not GenerationStatus.AWAITING_CREDITS:
            return
        await fail(
            uow,
            gen,
            event.reason,
            f"these images cost {event.required} credits; {event.available} available",
        )

    async def hold_expired(self, event: HoldExpiredV1, uow: UnitOfWork) -> None:
        if event.job_kind != "generation":
            return
        gen = await load(uow, event.job_id)
        if gen is not None and await fail(
            uow, gen, "hold_expired", "the generation ran past its paid time"
        ):
            uow.after_commit(self.wake)

    def handlers(self) -> Mapping[type[Event], EventHandler]:
        return {
            CreditsReservedV1: self.reserved,  # type: ignore[dict-item]
            CreditsRejectedV1: self.rejected,  # type: ignore[dict-item]
            HoldExpiredV1: self.hold_expired,  # type: ignore[dict-item]
        }


def webhook_inbox(
    db: Database,
    predictions: PredictionsPort,
    tolerance_s: int,
    quiet_s: float,
    wake: Callable[[], None],
) -> WebhookInbox:
    """Replicate's prediction webhooks, applied to the generation whose prediction it is."""

    async def apply(uow: UnitOfWork, gen_id: uuid.UUID, data: dict[str, Any]) -> None:
        gen = await load(uow, gen_id)
        if gen is not None:
            await apply_provider(uow, gen, ProviderPrediction.from_payload(data), quiet_s)

    return WebhookInbox(
        db,
        predictions.webhook_secrets,
        table="generations",
        id_column="provider_prediction_id",
        tolerance_s=tolerance_s,
        apply=apply,
        wake=wake,
    )
