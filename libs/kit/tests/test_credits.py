"""The credits-saga participant routes billing's answers to the job's own rules and saves it.

The job here is a small stand-in with the rules a real paid job has (wait for credits, then
run; ended is ended); training's Model and generation's Generation are tested with the same
answers in their services, and end to end through billing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from visiona.kit.credits import CreditsParticipant
from visiona.kit.events import (
    CreditsRejectedV1,
    CreditsReservedV1,
    Event,
    GenerationCanceledV1,
    HoldExpiredV1,
)


@dataclass
class Job:
    id: uuid.UUID
    status: str = "awaiting_credits"
    hold_id: uuid.UUID | None = None
    message: str | None = None
    events: list[Event] = field(default_factory=list)

    def credits_reserved(self, hold_id: uuid.UUID, now: datetime) -> bool:
        if self.status == "canceled":
            self.events.append(
                GenerationCanceledV1(
                    user_id="user_1", generation_id=self.id, reason="canceled", delivered=0
                )
            )
        if self.status != "awaiting_credits":
            return False
        self.status, self.hold_id = "running", hold_id
        return True

    def credits_rejected(self, reason: str, message: str, now: datetime) -> bool:
        if self.status != "awaiting_credits":
            return False
        self.status, self.message = "failed", message
        return True

    def hold_expired(self, now: datetime) -> bool:
        if self.status not in ("awaiting_credits", "running"):
            return False
        self.status = "failed"
        return True


@dataclass
class Recorder:
    """The unit of work as the participant uses it: callbacks after commit (events go out
    through the repository's save, recorded below)."""

    after: list[Callable[[], None]] = field(default_factory=list)

    def after_commit(self, callback: Callable[[], None]) -> None:
        self.after.append(callback)


@pytest.fixture
def world() -> dict[str, Any]:
    jobs: dict[uuid.UUID, Job] = {}
    saved: list[tuple[str, list[Event]]] = []
    woken: list[bool] = []

    async def load(uow: Any, job_id: uuid.UUID) -> Job | None:
        return jobs.get(job_id)

    async def save(uow: Any, job: Job) -> None:
        """What a repository's save does: the changes and the events raised, in one go."""
        saved.append((job.status, list(job.events)))
        job.events.clear()

    participant = CreditsParticipant[Job](
        job_kind="generation",
        load=load,
        save=save,
        rejected_message="these images cost {required} credits; {available} available",
        wake=lambda: woken.append(True),
    )
    return {"jobs": jobs, "saved": saved, "woken": woken, "participant": participant}


def _job(world: dict[str, Any], status: str = "awaiting_credits") -> Job:
    job = Job(uuid.uuid4(), status=status)
    world["jobs"][job.id] = job
    return job


def reserved(job_id: uuid.UUID, kind: str = "generation") -> CreditsReservedV1:
    return CreditsReservedV1(
        user_id="user_1",
        job_kind=kind,  # type: ignore[arg-type]
        job_id=job_id,
        hold_id=uuid.uuid4(),
        credits=2,
        expires_at=datetime.now(UTC) + timedelta(hours=1),
    )


async def test_a_reservation_starts_the_waiting_job_and_wakes_the_worker_after_commit(
    world: dict[str, Any],
) -> None:
    job, uow = _job(world), Recorder()
    event = reserved(job.id)
    await world["participant"].reserved(event, uow)
    assert (job.status, job.hold_id) == ("running", event.hold_id)
    assert world["saved"] == [("running", [])]
    assert world["woken"] == []  # not before the commit
    uow.after[0]()
    assert world["woken"] == [True]


async def test_a_reservation_for_a_canceled_job_is_answered_with_its_outcome_again(
    world: dict[str, Any],
) -> None:
    job, uow = _job(world, "canceled"), Recorder()
    await world["participant"].reserved(reserved(job.id), uow)
    [(status, events)] = world["saved"]
    assert status == "canceled" and [type(e) for e in events] == [GenerationCanceledV1]
    assert uow.after == []


async def test_a_repeated_reservation_changes_nothing(world: dict[str, Any]) -> None:
    job, uow = _job(world, "running"), Recorder()
    await world["participant"].reserved(reserved(job.id), uow)
    assert world["saved"] == [("running", [])] and uow.after == []


async def test_answers_for_another_kind_of_job_or_an_unknown_one_are_ignored(
    world: dict[str, Any],
) -> None:
    job, uow = _job(world), Recorder()
    await world["participant"].reserved(reserved(job.id, kind="training"), uow)
    await world["participant"].reserved(reserved(uuid.uuid4()), uow)
    assert job.status == "awaiting_credits"
    assert world["saved"] == [] and uow.after == []


async def test_a_rejection_fails_the_job_with_what_it_costs(world: dict[str, Any]) -> None:
    job, uow = _job(world), Recorder()
    event = CreditsRejectedV1(
        user_id="user_1",
        job_kind="generation",
        job_id=job.id,
        reason="insufficient_credits",
        required=4,
        available=1,
    )
    await world["participant"].rejected(event, uow)
    assert (job.status, job.message) == ("failed", "these images cost 4 credits; 1 available")
    assert world["saved"] == [("failed", [])] and uow.after == []


async def test_an_expired_hold_stops_a_running_job_but_not_an_ended_one(
    world: dict[str, Any],
) -> None:
    running, ended, uow = _job(world, "running"), _job(world, "failed"), Recorder()
    for job in (running, ended):
        await world["participant"].hold_expired(
            HoldExpiredV1(
                user_id="user_1",
                job_kind="generation",
                job_id=job.id,
                hold_id=uuid.uuid4(),
                credits=2,
            ),
            uow,
        )
    assert (running.status, ended.status) == ("failed", "failed")
    assert len(uow.after) == 1  # only the job that stopped has work to do
