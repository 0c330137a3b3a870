"""The paid provider job's shared transitions and the aggregate's bookkeeping, on a stand-in job.

Training's Model and generation's Generation test the same transitions with their own events
and states in their services; here, what the kit itself decides: what is recorded, what is
raised, and that a stale or repeated update changes nothing.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from visiona.kit.aggregate import ProviderJob
from visiona.kit.errors import NotYet
from visiona.kit.events import Event, GenerationCanceledV1, GenerationFailedV1
from visiona.kit.events import GenerationRequestedV1 as Requested

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class Status(enum.StrEnum):
    AWAITING_CREDITS = "awaiting_credits"
    QUEUED = "queued"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def terminal(self) -> bool:
        return self in (Status.SUCCEEDED, Status.FAILED, Status.CANCELED)


@dataclass
class Job(ProviderJob):
    launch_status = Status.QUEUED.value

    @property
    def state(self) -> Status:
        return Status(self.status)

    @property
    def provider_running(self) -> bool:
        return self.launch_attempted_at is not None and self.provider_status != "succeeded"

    def credits_request(self) -> Event:
        return Requested(
            user_id=self.user_id, generation_id=self.id, model_id=self.id, num_outputs=1
        )

    def _failed(self, reason: str) -> Event:
        return GenerationFailedV1(
            user_id=self.user_id, generation_id=self.id, reason=reason, delivered=0
        )

    def _canceled(self, reason: str) -> Event:
        return GenerationCanceledV1(
            user_id=self.user_id, generation_id=self.id, reason=reason, delivered=0
        )


def job(status: Status = Status.AWAITING_CREDITS, **fields: Any) -> Job:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "user_id": "user_1",
        "status": status.value,
        "hold_id": None,
        "provider_status": None,
        "launch_attempted_at": None,
        "provider_seen_at": None,
        "failure_reason": None,
        "failure_message": None,
        "work": "ask_credits" if status is Status.AWAITING_CREDITS else None,
        "work_after": None,
        "work_attempts": 0,
        "lease_until": None,
        "created_at": NOW,
        "started_at": None,
        "finished_at": None,
        "updated_at": NOW,
    }
    return Job(**(values | fields))


def test_changes_and_events_are_pulled_once_and_no_field_of_the_row() -> None:
    j = job()
    assert j.ask_credits_again(30.0, NOW)
    assert j.pull_changes() == {"work_after": NOW + timedelta(seconds=30)}
    assert [type(e) for e in j.pull_events()] == [Requested]
    assert (j.pull_changes(), j.pull_events()) == ({}, [])
    assert j == job(id=j.id, work_after=NOW + timedelta(seconds=30))


def test_a_reservation_makes_the_launch_due_in_the_launch_status() -> None:
    j, hold = job(), uuid.uuid4()
    assert j.credits_reserved(hold, NOW)
    assert j.pull_changes() == {
        "status": "queued",
        "hold_id": hold,
        "work": "launch",
        "work_after": NOW,
        "work_attempts": 0,
    }


def test_a_reservation_for_an_ended_job_raises_its_outcome_again_and_changes_nothing() -> None:
    j = job(Status.CANCELED, failure_reason="canceled_by_user")
    assert not j.credits_reserved(uuid.uuid4(), NOW)
    assert j.pull_changes() == {}
    (event,) = j.pull_events()
    assert isinstance(event, GenerationCanceledV1) and event.reason == "canceled_by_user"


def test_failing_a_job_the_provider_may_run_hands_it_to_the_cancel_step() -> None:
    j = job(Status.QUEUED, launch_attempted_at=NOW, work="poll")
    assert j.fail("provider_lost", "x" * 600, NOW)
    changes = j.pull_changes()
    assert (changes["status"], changes["failure_reason"]) == ("failed", "provider_lost")
    assert len(changes["failure_message"]) == 500
    assert (changes["work"], changes["work_after"], changes["work_attempts"]) == ("cancel", NOW, 0)
    assert not j.cancel(NOW)
    assert j.canceled_at_provider()
    assert j.pull_changes() == {"work": None, "work_after": None, "provider_status": "canceled"}


def test_a_launch_attempt_only_in_the_launch_status() -> None:
    assert job(Status.QUEUED).launch_attempted(NOW, seen=None)
    assert not job(Status.CANCELED).launch_attempted(NOW, seen=None)


def test_a_launch_attempt_recorded_meanwhile_stops_a_second_one() -> None:
    """Two workers decided to launch from the same row (a lease ran out while the first was
    still preparing): the second to record its attempt must not launch as well."""
    j = job(Status.QUEUED)
    assert j.launch_attempted(NOW, seen=None)
    with pytest.raises(NotYet):
        j.launch_attempted(NOW + timedelta(seconds=1), seen=None)
    # Deciding on the attempt as it now stands (adopt it, or launch after it failed) is fine.
    assert j.launch_attempted(NOW + timedelta(seconds=2), seen=NOW)


def test_a_rejection_fails_only_a_job_still_awaiting_credits() -> None:
    waiting, queued = job(), job(Status.QUEUED)
    assert waiting.credits_rejected("insufficient_credits", "no", NOW)
    assert waiting.pull_changes()["status"] == "failed"
    assert not queued.credits_rejected("insufficient_credits", "no", NOW)
    assert (queued.pull_changes(), queued.pull_events()) == ({}, [])
