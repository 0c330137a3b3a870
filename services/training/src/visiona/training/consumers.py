"""Training's event handlers: its side of billing's credit-hold saga, generation's word about
a missing version, and Replicate's training webhooks.

Credits: ``training.training.requested.v1`` goes out with the new model; billing answers
``billing.credits.reserved.v1`` (the model starts preparing) or ``billing.credits.rejected.v1``
(the model fails, nothing was held). ``billing.hold.expired.v1`` means the job is no longer
paid for: it is stopped. A reservation that arrives after the user canceled is answered with
the outcome again, so billing releases the hold at once instead of at its expiry.

Versions: ``generation.model.version_missing.v1`` (a prediction refused for a version the
provider no longer has) makes the model check its version at once (visiona.training.jobs.model).

Each handler loads the model, calls one transition of the aggregate
(visiona.training.domain.model) and saves it in the consumer's unit of work.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from visiona.kit.consumer import EventHandler
from visiona.kit.credits import CreditsParticipant
from visiona.kit.db import Database, UnitOfWork
from visiona.kit.events import (
    Event,
    ModelVersionMissingV1,
)
from visiona.kit.logging import get_logger
from visiona.kit.replicate import WebhookInbox, job_webhooks
from visiona.training.config import TrainingSettings
from visiona.training.domain.model import Model, ProviderTraining
from visiona.training.jobs.model import ModelJobs
from visiona.training.providers.replicate import ReplicatePort
from visiona.training.repository import model as repo

log = get_logger(__name__)

CREDITS_CONSUMER = "training.credits"


def _now() -> datetime:
    return datetime.now(UTC)


def credits_participant(wake: Callable[[], None]) -> CreditsParticipant[Model]:
    """Billing's answers about a training's credits (its job id is the training id), applied
    to the model."""
    return CreditsParticipant(
        job_kind="training",
        load=repo.load_by_training,
        save=repo.save,
        rejected_message="a training costs {required} credits; {available} available",
        wake=wake,
    )


VERSIONS_CONSUMER = "training.versions"


class VersionChecks:
    """Generation found a model's trained version gone: the model's own check runs now (the
    provider is asked again here; a refused prediction alone proves nothing)."""

    def __init__(self, wake: Callable[[], None]) -> None:
        self.wake = wake

    async def missing(self, event: ModelVersionMissingV1, uow: UnitOfWork) -> None:
        model = await repo.load(uow, event.model_id)
        if model is not None and model.check_version(_now()):
            await repo.save(uow, model)
            uow.after_commit(self.wake)

    def handlers(self) -> Mapping[type[Event], EventHandler]:
        return {ModelVersionMissingV1: self.missing}  # type: ignore[dict-item]


def webhook_inbox(
    db: Database, replicate: ReplicatePort, jobs: ModelJobs, settings: TrainingSettings
) -> WebhookInbox:
    """Replicate's training webhooks, applied to the model whose training it is."""

    def heard(model: Model, data: dict[str, Any], now: datetime) -> bool:
        training = ProviderTraining.from_payload(data)
        return model.apply_provider_status(training, settings.reconcile_quiet_s, now)

    return job_webhooks(
        db, replicate.webhook_secrets, jobs, settings, id_column="provider_training_id", heard=heard
    )
