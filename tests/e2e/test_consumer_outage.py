"""A database outage no longer loses saga events: a generation's outcome that reaches billing
while billing's database is down waits in billing's consumer (not its dead-letter queue) and
is captured once the database is back: the delivered images are paid for."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from typing import Any

import aio_pika
import pytest

from tests.e2e.test_billing import ledger, wait_balance
from tests.e2e.test_generation import (
    AFTER_TRAINING,
    IMAGE,
    generate,
    prediction_started,
    wait_generation,
)
from tests.e2e.training_helpers import emulator
from tests.support.stack import RunningStack
from tests.support.waiting import wait_for
from visiona.billing.consumers import HOLDS_CONSUMER
from visiona.kit.events import GenerationSucceededV1
from visiona.kit.settings import ServiceSettings

# What the stack's services run with (nothing overrides it).
DELIVERY_LIMIT = ServiceSettings().delivery_limit


@contextlib.contextmanager
def database_unavailable(stack: RunningStack, service: str) -> Iterator[None]:
    """``service``'s role cannot log in and its connections are cut, until the block ends."""
    role = stack.cfg.roles(service).app
    stack.admin_sql(f'ALTER ROLE "{role}" NOLOGIN')
    try:
        stack.admin_sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", role
        )
        yield
    finally:
        stack.admin_sql(f'ALTER ROLE "{role}" LOGIN')


def dead_letters(stack: RunningStack, group: str) -> int:
    async def count() -> int:
        connection = await aio_pika.connect(stack.cfg.amqp_url)
        async with connection:
            channel = await connection.channel()
            dlq = await channel.declare_queue(f"{stack.cfg.queue_prefix}{group}.dlq", passive=True)
            return int(dlq.declaration_result.message_count or 0)

    return asyncio.run(count())


def failed_attempts(stack: RunningStack, group: str, event_id: str) -> int:
    """How often ``group`` in billing failed to handle the event (from billing's log)."""
    attempts = 0
    for line in stack.processes.log("billing").splitlines():
        if event_id not in line or not line.startswith("{"):
            continue
        entry: dict[str, Any] = json.loads(line)
        if entry.get("consumer") == group and entry.get("event") in (
            "consumer.dependency_unavailable",
            "consumer.handler_failed",
        ):
            attempts += 1
    return attempts


@pytest.mark.disruptive
def test_an_outcome_billing_gets_while_its_database_is_down_is_captured_once_it_is_back(
    stack: RunningStack,
    owner: tuple[str, dict[str, Any]],
) -> None:
    user, model = owner
    # The prediction runs until the test ends it.
    emulator(stack, "config", {"prediction_duration_s": 600})
    gen = generate(stack, user, model_id=model["id"], num_outputs=2).json()
    prediction = prediction_started(stack, gen["id"])
    assert dead_letters(stack, HOLDS_CONSUMER) == 0

    with database_unavailable(stack, "billing"):
        emulator(stack, f"predictions/{prediction}/finish", {"status": "succeeded"})
        ((outcome,),) = wait_for(
            "the outcome to be published",
            lambda: stack.admin_sql(
                "SELECT event_id FROM generation.outbox WHERE routing_key = %s "
                "AND payload->>'generation_id' = %s AND published_at IS NOT NULL",
                GenerationSucceededV1.routing_key,
                gen["id"],
            ),
            lambda rows: len(rows) == 1,
            timeout_s=40,
        )
        # Billing met the outage with it more often than its delivery limit allows (or
        # dead-lettered it: the failure this test is about).
        wait_for(
            "billing to try the outcome through the outage",
            lambda: (
                failed_attempts(stack, HOLDS_CONSUMER, str(outcome)),
                dead_letters(stack, HOLDS_CONSUMER),
            ),
            lambda seen: seen[0] > DELIVERY_LIMIT + 1 or seen[1] > 0,
            timeout_s=60,
        )
        assert dead_letters(stack, HOLDS_CONSUMER) == 0

    done = wait_generation(stack, user, gen["id"])
    assert done["status"] == "succeeded" and done["delivered"] == 2, done
    after = wait_balance(stack, user, AFTER_TRAINING - 2 * IMAGE)
    assert after["held"] == 0
    captures = [e for e in ledger(stack, user) if e["kind"] == "capture"]
    assert [e["delta_balance"] for e in captures] == [-2 * IMAGE, -150]
    assert dead_letters(stack, HOLDS_CONSUMER) == 0
