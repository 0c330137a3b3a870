"""What an operator's retry and fail do to a paid provider job (visiona.kit.jobadmin), on the
stand-in job of test_aggregate. End to end, with billing releasing the hold once:
tests/e2e/test_admin.py."""

from __future__ import annotations

from datetime import timedelta

import pytest

from libs.kit.tests.test_aggregate import NOW, Status, job
from visiona.kit.events import GenerationFailedV1
from visiona.kit.jobadmin import OPERATOR_FAILED, next_step, resume


def test_a_job_without_a_step_is_given_the_one_that_moves_it_on() -> None:
    assert next_step(job(Status.AWAITING_CREDITS, work=None)) == "ask_credits"
    assert next_step(job(Status.QUEUED)) == "launch"
    # Past its launch (the provider's states are the service's): ask the provider.
    running = job(Status.QUEUED, provider_status="processing")
    running.status = "running"
    assert next_step(running) == "poll"


def test_retry_makes_the_step_due_now_with_attempts_afresh_and_keeps_the_lease() -> None:
    lease = NOW + timedelta(seconds=30)
    j = job(
        Status.QUEUED,
        work="launch",
        work_after=NOW + timedelta(minutes=5),
        work_attempts=7,
        lease_until=lease,
    )
    assert resume(j, NOW)
    assert j.pull_changes() == {"work": "launch", "work_after": NOW, "work_attempts": 0}
    assert j.lease_until == lease and j.pull_events() == []


def test_retry_gives_a_stepless_job_its_next_step() -> None:
    j = job(Status.QUEUED, work=None)
    assert resume(j, NOW)
    assert j.pull_changes()["work"] == "launch"


@pytest.mark.parametrize("status", [Status.SUCCEEDED, Status.FAILED, Status.CANCELED])
def test_an_ended_job_is_not_retried(status: Status) -> None:
    j = job(status)
    assert not resume(j, NOW)
    assert j.pull_changes() == {} and j.pull_events() == []


def test_failing_raises_the_failure_once_so_billing_releases_once() -> None:
    j = job(Status.QUEUED, work="launch")
    assert j.fail(OPERATOR_FAILED, "stopped by support", NOW)
    (event,) = j.pull_events()
    assert isinstance(event, GenerationFailedV1) and event.reason == OPERATOR_FAILED
    assert j.status == "failed" and j.work is None
    assert not j.fail(OPERATOR_FAILED, "again", NOW)
    assert j.pull_events() == []
