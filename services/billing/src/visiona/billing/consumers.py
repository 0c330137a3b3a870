"""Billing's reactions to other services' events (inbox-deduplicated by the kit)."""

from __future__ import annotations

from collections.abc import Mapping

from visiona.billing.domain import USAGE_PROMPT_ENHANCEMENT
from visiona.billing.repository import UsageRepository
from visiona.kit.consumer import EventHandler
from visiona.kit.db import UnitOfWork
from visiona.kit.events import Event, PromptEnhancementCreatedV1

USAGE_CONSUMER = "billing.usage"


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
