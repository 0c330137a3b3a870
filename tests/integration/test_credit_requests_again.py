"""Jobs waiting for billing's answer ask again, and billing answers a repeated request as the
hold stands; a duplicate answer changes nothing on the job's side.

Each service's code runs in process on its own migrated schema (the real database); the
events each side emits are read from its outbox.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from tests.support.schemas import SchemaDb, schema_fixture
from tests.support.waiting import eventually
from visiona.billing.config import BillingSettings
from visiona.billing.consumers import HoldSaga
from visiona.billing.domain.catalog import Catalog
from visiona.billing.jobs import expire_due_holds
from visiona.billing.repository.ledger import Ledger
from visiona.generation.clients import PreparedPrompt, ReadyModel
from visiona.generation.config import GenerationSettings
from visiona.generation.consumers import credits_participant as generation_credits
from visiona.generation.domain.request import check_request
from visiona.generation.jobs.generation import GenerationJobs
from visiona.generation.service.generation import GenerationService
from visiona.kit.db import Database
from visiona.kit.events import (
    CreditsRejectedV1,
    CreditsReservedV1,
    Event,
    GenerationRequestedV1,
    GenerationSucceededV1,
    TrainingRequestedV1,
)
from visiona.training.config import TrainingSettings
from visiona.training.consumers import credits_participant as training_credits
from visiona.training.jobs.model import ModelJobs
from visiona.training.service.model import Limits, ModelService

IMAGE = 4


billing_schema = schema_fixture("billing", scope="module")


generation_schema = schema_fixture("generation", scope="module")


@pytest.fixture
async def billing(billing_schema: SchemaDb) -> AsyncIterator[Database]:
    async with billing_schema.opened() as db:
        yield db


def emitted(schema: SchemaDb, key: str, job_id: uuid.UUID) -> list[tuple[str, dict[str, Any]]]:
    """(routing key, payload) of the events staged about one job, oldest first."""
    rows = schema.sql(
        "SELECT routing_key, payload FROM outbox WHERE payload->>%s = %s ORDER BY id",
        key,
        str(job_id),
    )
    return [(str(r[0]), dict(r[1])) for r in rows]


async def handle(db: Database, user: str, handler: Any, event: Event) -> None:
    """``handler`` as the consumer runs it: in one unit of work for the event's user."""
    async with db.uow(user) as uow:
        await handler(event, uow)
        await uow.commit()


@contextlib.asynccontextmanager
async def reminding(
    schema: SchemaDb, row_jobs: Callable[..., Any], settings: Any
) -> AsyncIterator[tuple[Database, Any]]:
    """The service's database and its row-jobs, closed afterwards. The jobs have neither
    storage nor a provider: only what waits on credits runs."""
    async with schema.opened() as db:
        jobs = row_jobs(db, None, None, settings)
        try:
            yield db, jobs
        finally:
            await jobs.close()


def asked_twice(
    schema: SchemaDb, key: str, job_id: uuid.UUID, routing_key: str
) -> list[dict[str, Any]]:
    """The payloads of the two requests staged about one job: the first and the reminder, each
    an event of its own."""
    asked = emitted(schema, key, job_id)
    assert [k for k, _ in asked] == [routing_key] * 2
    assert asked[0][1]["event_id"] != asked[1][1]["event_id"]
    return [payload for _, payload in asked]


def reservation(
    user: str, kind: str, job_id: uuid.UUID, hold: uuid.UUID, credits: int, valid: timedelta
) -> CreditsReservedV1:
    """Billing's answer that ``hold`` reserves ``credits`` for the job, for ``valid`` from now."""
    return CreditsReservedV1(
        user_id=user,
        job_kind=kind,
        job_id=job_id,
        hold_id=hold,
        credits=credits,
        expires_at=datetime.now(UTC) + valid,
    )


async def answered_twice(
    db: Database,
    user: str,
    handler: Any,
    answer: Callable[[], Event],
    read: Callable[[], Awaitable[Any]],
) -> list[Any]:
    """Billing's answer delivered twice (two events saying the same): the job as each left it."""
    seen = []
    for _ in range(2):
        await handle(db, user, handler, answer())
        seen.append(await read())
    return seen


async def grant(db: Database, user: str, credits: int) -> None:
    async with db.uow(user) as uow:
        await Ledger(uow.session).post(
            user_id=user, key=f"purchase:{uuid.uuid4()}", kind="purchase", delta=credits
        )
        await uow.commit()


def new_user() -> str:
    return f"user_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def saga() -> HoldSaga:
    return HoldSaga(Catalog.load(BillingSettings().catalog_file))


async def ask(billing: Database, saga: HoldSaga, user: str, job: uuid.UUID) -> None:
    """A generation's request for two images' credits, as billing's consumer handles it."""
    requested = GenerationRequestedV1(
        user_id=user, generation_id=job, model_id=uuid.UUID(int=1), num_outputs=2
    )
    await handle(billing, user, saga.generation_requested, requested)


# --- billing --------------------------------------------------------------------------------


async def test_billing_answers_a_repeated_request_for_an_open_hold_and_holds_once(
    billing: Database, billing_schema: SchemaDb, saga: HoldSaga
) -> None:
    user, job = new_user(), uuid.uuid4()
    await grant(billing, user, 100)
    await ask(billing, saga, user, job)
    await ask(billing, saga, user, job)

    answers = emitted(billing_schema, "job_id", job)
    assert [k for k, _ in answers] == [CreditsReservedV1.routing_key] * 2
    assert answers[0][1]["hold_id"] == answers[1][1]["hold_id"]
    assert answers[0][1]["event_id"] != answers[1][1]["event_id"]
    ((held, entries),) = billing_schema.sql(
        "SELECT a.held, (SELECT count(*) FROM ledger_entries e WHERE e.user_id = a.user_id "
        "AND e.kind = 'hold') FROM accounts a WHERE a.user_id = %s",
        user,
    )
    assert (held, entries) == (2 * IMAGE, 1)


async def test_billing_answers_a_repeated_request_it_rejected_with_the_rejection(
    billing: Database, billing_schema: SchemaDb, saga: HoldSaga
) -> None:
    user, job = new_user(), uuid.uuid4()
    await ask(billing, saga, user, job)
    await ask(billing, saga, user, job)

    answers = emitted(billing_schema, "job_id", job)
    assert [k for k, _ in answers] == [CreditsRejectedV1.routing_key] * 2


async def test_billing_answers_a_repeated_request_of_an_expired_hold_with_the_expiry(
    billing: Database, billing_schema: SchemaDb, saga: HoldSaga
) -> None:
    user, job = new_user(), uuid.uuid4()
    await grant(billing, user, 100)
    await ask(billing, saga, user, job)
    billing_schema.sql(
        "UPDATE holds SET expires_at = now() - interval '1 second' WHERE job_id = %s", str(job)
    )
    await eventually("the hold to expire", lambda: expire_due_holds(billing, 100))
    await ask(billing, saga, user, job)

    keys = [k for k, _ in emitted(billing_schema, "job_id", job)]
    assert keys == [
        CreditsReservedV1.routing_key,
        "billing.hold.expired.v1",
        "billing.hold.expired.v1",
    ]
    assert billing_schema.sql("SELECT held FROM accounts WHERE user_id = %s", user) == [(0,)]


async def test_billing_does_not_answer_a_request_whose_job_already_ended(
    billing: Database, billing_schema: SchemaDb, saga: HoldSaga
) -> None:
    user, job = new_user(), uuid.uuid4()
    await grant(billing, user, 100)
    await ask(billing, saga, user, job)
    ended = GenerationSucceededV1(user_id=user, generation_id=job, requested=2, delivered=2)
    await handle(billing, user, saga.generation_succeeded, ended)
    await ask(billing, saga, user, job)

    keys = [k for k, _ in emitted(billing_schema, "job_id", job)]
    assert keys.count(CreditsReservedV1.routing_key) == 1
    assert billing_schema.sql("SELECT balance, held FROM accounts WHERE user_id = %s", user) == [
        (100 - 2 * IMAGE, 0)
    ]


# --- generation -----------------------------------------------------------------------------


class ReadyBackends:
    """Training, prompts and billing's answers before a generation is accepted: a ready
    model, the prompt as given, two at a time (gRPC ports; not what is under test)."""

    async def ready_model(self, user_id: str, model_id: str) -> ReadyModel:
        return ReadyModel(id=model_id, version="owner/model:abc123", trigger_word="TOK")

    async def prepare_prompt(
        self, user_id: str, *, prompt: str, trigger_word: str, style_pack: str | None, enhance: bool
    ) -> PreparedPrompt:
        return PreparedPrompt(f"{trigger_word} {prompt}", False, False, False, "", "", "")

    async def max_concurrent_generations(self, user_id: str) -> int:
        return 2


async def test_a_generation_awaiting_credits_asks_again_and_ignores_a_duplicate_answer(
    generation_schema: SchemaDb,
) -> None:
    async with reminding(
        generation_schema,
        GenerationJobs,
        GenerationSettings(credits_ask_again_s=60),
    ) as (db, jobs):
        user = new_user()
        service = GenerationService(db, ReadyBackends(), credits_ask_again_s=0.2)
        gen, _ = await service.create(
            user, check_request(model_id=str(uuid.uuid4()), prompt="on a beach", num_outputs=2)
        )
        assert (gen.status, gen.work) == ("awaiting_credits", "ask_credits")

        # No answer came: once due, the reminder asks billing again, with a new event.
        await eventually("the reminder to run", jobs.run_once)
        asked = asked_twice(
            generation_schema, "generation_id", gen.id, GenerationRequestedV1.routing_key
        )
        assert {p["num_outputs"] for p in asked} == {2}
        row = await service.get(user, str(gen.id))
        assert row.work == "ask_credits" and row.work_after is not None
        assert row.work_after > datetime.now(UTC) + timedelta(seconds=30)

        # Billing answers both requests: the first answer launches, the second is ignored.
        saga = generation_credits(lambda: None)
        hold = uuid.uuid4()
        seen = await answered_twice(
            db,
            user,
            saga.reserved,
            lambda: reservation(user, "generation", gen.id, hold, 2 * IMAGE, timedelta(minutes=30)),
            lambda: service.get(user, str(gen.id)),
        )
        assert (seen[0].status, seen[0].work, seen[0].hold_id) == ("queued", "launch", hold)
        assert seen[1] == seen[0]
        late = CreditsRejectedV1(
            user_id=user,
            job_kind="generation",
            job_id=gen.id,
            reason="insufficient_credits",
            required=8,
            available=0,
        )
        await handle(db, user, saga.rejected, late)
        assert await service.get(user, str(gen.id)) == seen[0]
        assert len(emitted(generation_schema, "generation_id", gen.id)) == 2


# --- training -------------------------------------------------------------------------------


class PlanLimits:
    async def limits(self, user_id: str) -> Limits:
        return Limits(max_concurrent_trainings=1, max_stored_models=5)


async def test_a_model_awaiting_credits_asks_again_and_ignores_a_duplicate_answer(
    training_schema: SchemaDb,
) -> None:
    async with reminding(
        training_schema,
        ModelJobs,
        TrainingSettings(credits_ask_again_s=60),
    ) as (db, jobs):
        user = new_user()
        photos = [uuid.uuid4() for _ in range(10)]
        async with db.uow(user) as uow:
            for photo in photos:
                await uow.session.execute(
                    _INSERT_PHOTO, {"id": photo, "u": user, "key": f"photos/{photo}.jpg"}
                )
            await uow.commit()
        service = ModelService(db, PlanLimits(), credits_ask_again_s=0.2)
        model, _ = await service.create(
            user, name="Me", photo_ids=[str(p) for p in photos], preset=None, trigger_word=None
        )
        assert (model.status, model.work) == ("awaiting_credits", "ask_credits")

        await eventually("the reminder to run", jobs.run_once)
        asked = asked_twice(
            training_schema, "training_id", model.training_id, TrainingRequestedV1.routing_key
        )
        assert {p["model_id"] for p in asked} == {str(model.id)}

        saga = training_credits(lambda: None)
        hold = uuid.uuid4()
        seen = await answered_twice(
            db,
            user,
            saga.reserved,
            lambda: reservation(user, "training", model.training_id, hold, 150, timedelta(hours=4)),
            lambda: service.get(user, str(model.id)),
        )
        assert (seen[0].status, seen[0].work, seen[0].hold_id) == ("preparing", "launch", hold)
        assert seen[1] == seen[0]
        # The first answer told live views (one progressed event); the duplicate nothing.
        keys = [k for k, _ in emitted(training_schema, "training_id", model.training_id)]
        assert keys.count("training.model.progressed.v1") == 1


_INSERT_PHOTO = sa.text(
    "INSERT INTO photos (id, user_id, status, declared_type, upload_key, upload_expires_at, "
    "object_key) VALUES (:id, :u, 'accepted', 'image/jpeg', :key, now(), :key)"
)
