"""A job whose request for credits billing never received (lost, or dead-lettered and not yet
redriven) asks again and runs: billing's consumer group is unbound from the request's routing
key while the job is created, so the request reaches everyone but billing."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import aio_pika
import pytest

from tests.e2e.saga_helpers import EventProbe
from tests.e2e.test_billing import buy_starter, ledger, wait_balance
from tests.e2e.test_generation import (
    AFTER_TRAINING,
    IMAGE,
    STARTER,
    generate,
    wait_generation,
)
from tests.e2e.training_helpers import accepted_photo_ids, create_model, wait_model
from tests.support.stack import RunningStack
from visiona.billing.consumers import HOLDS_CONSUMER
from visiona.kit.events import Event, GenerationRequestedV1, TrainingRequestedV1


@contextlib.asynccontextmanager
async def billing_misses(stack: RunningStack, routing_key: str) -> AsyncIterator[None]:
    """Billing's hold queue does not receive ``routing_key`` until the block ends."""
    cfg = stack.cfg
    connection = await aio_pika.connect(cfg.amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(f"{cfg.queue_prefix}{HOLDS_CONSUMER}", passive=True)
        await queue.unbind(cfg.exchange, routing_key)
        try:
            yield
        finally:
            await queue.bind(cfg.exchange, routing_key)


def request_of(
    kind: type[GenerationRequestedV1 | TrainingRequestedV1],
    job_id: uuid.UUID,
    other_than: uuid.UUID | None = None,
) -> Callable[[Event], bool]:
    """Matches a request for credits (``kind``) for one job, other than the event ``other_than``."""

    def match(e: Event) -> bool:
        if not isinstance(e, kind) or e.event_id == other_than:
            return False
        job = e.generation_id if isinstance(e, GenerationRequestedV1) else e.model_id
        return job == job_id

    return match


def hold_entries(stack: RunningStack, user: str) -> list[str]:
    return [e["kind"] for e in ledger(stack, user) if e["kind"] == "hold"]


@pytest.mark.disruptive
async def test_a_generation_whose_request_billing_missed_asks_again_and_completes(
    stack: RunningStack,
    owner: tuple[str, dict[str, Any]],
) -> None:
    user, model = owner
    key = GenerationRequestedV1.routing_key
    async with EventProbe(stack, [key]) as probe:
        async with billing_misses(stack, key):
            created = await asyncio.to_thread(
                generate, stack, user, model_id=model["id"], num_outputs=2
            )
            assert created.status_code == 202, created.text
            gen_id = uuid.UUID(created.json()["id"])
            first = await probe.wait_for(request_of(GenerationRequestedV1, gen_id))
        # Billing never heard of it; the generation, still awaiting credits, asks again.
        again = await probe.wait_for(
            request_of(GenerationRequestedV1, gen_id, other_than=first.event_id)
        )
        assert again.event_id != first.event_id

    done = await asyncio.to_thread(wait_generation, stack, user, str(gen_id))
    assert done["status"] == "succeeded" and done["delivered"] == 2, done
    after = await asyncio.to_thread(wait_balance, stack, user, AFTER_TRAINING - 2 * IMAGE)
    assert after["held"] == 0
    # Held once (the training's hold and this one), however often it asked.
    assert len(await asyncio.to_thread(hold_entries, stack, user)) == 2


@pytest.mark.disruptive
async def test_a_training_whose_request_billing_missed_asks_again_and_trains(
    stack: RunningStack,
) -> None:
    user = f"asker{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(buy_starter, stack, user)
    await asyncio.to_thread(wait_balance, stack, user, STARTER)
    photo_ids = await asyncio.to_thread(accepted_photo_ids, stack, user, 10)
    key = TrainingRequestedV1.routing_key
    async with EventProbe(stack, [key]) as probe:
        async with billing_misses(stack, key):
            created = await asyncio.to_thread(create_model, stack, user, photo_ids, preset="fast")
            assert created.status_code == 202, created.text
            model_id = uuid.UUID(created.json()["id"])
            first = await probe.wait_for(request_of(TrainingRequestedV1, model_id))
        await probe.wait_for(request_of(TrainingRequestedV1, model_id, other_than=first.event_id))

    ready = await asyncio.to_thread(wait_model, stack, user, str(model_id))
    assert ready["status"] == "succeeded", ready
    after = await asyncio.to_thread(wait_balance, stack, user, AFTER_TRAINING)
    assert after["held"] == 0
    assert len(await asyncio.to_thread(hold_entries, stack, user)) == 1
