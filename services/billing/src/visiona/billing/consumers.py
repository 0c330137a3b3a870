"""Billing's event handlers (inbox-deduplicated by the kit): other services' events, and its
own staged Stripe events. Each runs in the consumer's transaction and hands over to a use case
(``service/``); erasure and export are in ``account/``.
"""

from __future__ import annotations

from collections.abc import Mapping

from visiona.billing.domain.catalog import Catalog
from visiona.billing.domain.usage import USAGE_PROMPT_ENHANCEMENT
from visiona.billing.providers.stripe import StripePort
from visiona.billing.repository.usage import UsageRepository
from visiona.billing.service.hold import Holds
from visiona.billing.service.stripe_events import StripeEventApplier
from visiona.kit.consumer import EventHandler
from visiona.kit.db import UnitOfWork
from visiona.kit.events import (
    Event,
    GenerationCanceledV1,
    GenerationFailedV1,
    GenerationRequestedV1,
    GenerationSucceededV1,
    ModelReadyV1,
    PromptEnhancementCreatedV1,
    StripeEventReceivedV1,
    TrainingCanceledV1,
    TrainingFailedV1,
    TrainingRequestedV1,
)

USAGE_CONSUMER = "billing.usage"
HOLDS_CONSUMER = "billing.holds"
STRIPE_CONSUMER = "billing.stripe"


async def record_enhancement_usage(event: PromptEnhancementCreatedV1, uow: UnitOfWork) -> None:
    """An enhancement used LLM tokens on the user's behalf: record them as usage."""
    await UsageRepository(uow.session).record(
        user_id=event.user_id,
        source_event_id=event.event_id,
        kind=USAGE_PROMPT_ENHANCEMENT,
        quantity=event.input_tokens + event.output_tokens,
        occurred_at=event.occurred_at,
    )


HANDLERS: Mapping[type[Event], EventHandler] = {
    PromptEnhancementCreatedV1: record_enhancement_usage,
}


class HoldSaga:
    """Billing's side of the credits saga: a job's request places its hold, its outcome
    settles it (:class:`~visiona.billing.service.hold.Holds`)."""

    def __init__(self, catalog: Catalog) -> None:
        self.holds = Holds(catalog)

    async def training_requested(self, event: TrainingRequestedV1, uow: UnitOfWork) -> None:
        await self.holds.reserve(uow, event.user_id, "training", event.training_id, 1)

    async def generation_requested(self, event: GenerationRequestedV1, uow: UnitOfWork) -> None:
        await self.holds.reserve(
            uow, event.user_id, "generation", event.generation_id, event.num_outputs
        )

    async def model_ready(self, event: ModelReadyV1, uow: UnitOfWork) -> None:
        await self.holds.settle(uow, event.user_id, "training", event.training_id, 1, "succeeded")

    async def training_failed(self, event: TrainingFailedV1, uow: UnitOfWork) -> None:
        await self.holds.settle(uow, event.user_id, "training", event.training_id, 0, "failed")

    async def training_canceled(self, event: TrainingCanceledV1, uow: UnitOfWork) -> None:
        await self.holds.settle(uow, event.user_id, "training", event.training_id, 0, "canceled")

    async def generation_succeeded(self, event: GenerationSucceededV1, uow: UnitOfWork) -> None:
        await self.holds.settle(
            uow, event.user_id, "generation", event.generation_id, event.delivered, "succeeded"
        )

    async def generation_failed(self, event: GenerationFailedV1, uow: UnitOfWork) -> None:
        await self.holds.settle(
            uow, event.user_id, "generation", event.generation_id, event.delivered, "failed"
        )

    async def generation_canceled(self, event: GenerationCanceledV1, uow: UnitOfWork) -> None:
        await self.holds.settle(
            uow, event.user_id, "generation", event.generation_id, event.delivered, "canceled"
        )

    def handlers(self) -> Mapping[type[Event], EventHandler]:
        return {
            TrainingRequestedV1: self.training_requested,
            GenerationRequestedV1: self.generation_requested,
            ModelReadyV1: self.model_ready,
            TrainingFailedV1: self.training_failed,
            TrainingCanceledV1: self.training_canceled,
            GenerationSucceededV1: self.generation_succeeded,
            GenerationFailedV1: self.generation_failed,
            GenerationCanceledV1: self.generation_canceled,
        }


def stripe_handlers(catalog: Catalog, stripe: StripePort) -> Mapping[type[Event], EventHandler]:
    """A Stripe event ``ingest`` stored and staged: apply it (``service/stripe_events.py``)."""
    return {StripeEventReceivedV1: StripeEventApplier(catalog, stripe).apply}
