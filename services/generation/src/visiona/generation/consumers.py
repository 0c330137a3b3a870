"""Generation's event handlers: its side of billing's credit-hold saga, Replicate's prediction
webhooks, and the gateway's account requests.

``generation.generation.requested.v1`` goes out with the new generation; billing answers
``billing.credits.reserved.v1`` (launch) or ``billing.credits.rejected.v1`` (fail, nothing
held). ``billing.hold.expired.v1`` stops a generation that outlived its hold. A reservation
that arrives after a cancel is answered with the outcome again, so billing releases at once.

``gateway.account.erasure_requested.v1`` and ``gateway.export.requested.v1`` only
record the request, in the inbox transaction (an ``erasures`` or ``exports`` row, which is its
own background job, :mod:`visiona.generation.account`), and ack: no delivery is held while
Replicate or S3 is waited on.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from visiona.generation.config import GenerationSettings
from visiona.generation.domain.generation import Generation
from visiona.generation.jobs.generation import GenerationJobs
from visiona.generation.providers.replicate import PredictionsPort, ProviderPrediction
from visiona.generation.repository import account as requests
from visiona.generation.repository import generation as generations
from visiona.kit.consumer import EventHandler
from visiona.kit.credits import CreditsParticipant
from visiona.kit.db import Database, UnitOfWork
from visiona.kit.events import (
    ErasureRequestedV1,
    Event,
    ExportRequestedV1,
)
from visiona.kit.logging import get_logger
from visiona.kit.replicate import WebhookInbox, job_webhooks

log = get_logger(__name__)

CREDITS_CONSUMER = "generation.credits"
ACCOUNT_CONSUMER = "generation.account"


def credits_participant(wake: Callable[[], None]) -> CreditsParticipant[Generation]:
    """Billing's answers about a generation's credits, applied to the generation."""
    return CreditsParticipant(
        job_kind="generation",
        load=generations.load,
        save=generations.save,
        rejected_message="these images cost {required} credits; {available} available",
        wake=wake,
    )


def webhook_inbox(
    db: Database, predictions: PredictionsPort, jobs: GenerationJobs, settings: GenerationSettings
) -> WebhookInbox:
    """Replicate's prediction webhooks, applied to the generation whose prediction it is."""

    def heard(gen: Generation, data: dict[str, Any], now: datetime) -> bool:
        prediction = ProviderPrediction.from_payload(data)
        return gen.apply_provider_status(
            prediction.status,
            outputs=prediction.outputs,
            error=prediction.error,
            now=now,
            quiet_s=settings.reconcile_quiet_s,
        )

    return job_webhooks(
        db,
        predictions.webhook_secrets,
        jobs,
        settings,
        id_column="provider_prediction_id",
        heard=heard,
    )


class AccountRequests:
    """A request becomes a row for the account workers, in the inbox transaction."""

    def __init__(self, wake_erasures: Callable[[], None], wake_exports: Callable[[], None]) -> None:
        self.wake_erasures = wake_erasures
        self.wake_exports = wake_exports

    async def erasure_requested(self, event: ErasureRequestedV1, uow: UnitOfWork) -> None:
        await requests.add_erasure(uow, event.user_id, event.deletion_id, event.round)
        uow.after_commit(self.wake_erasures)
        log.info("erasure.requested", deletion_id=str(event.deletion_id), round=event.round)

    async def export_requested(self, event: ExportRequestedV1, uow: UnitOfWork) -> None:
        await requests.add_export(uow, event.user_id, event.export_id)
        uow.after_commit(self.wake_exports)
        log.info("export.requested", export_id=str(event.export_id))

    def handlers(self) -> dict[type[Event], EventHandler]:
        return {
            ErasureRequestedV1: self.erasure_requested,  # type: ignore[dict-item]
            ExportRequestedV1: self.export_requested,  # type: ignore[dict-item]
        }
