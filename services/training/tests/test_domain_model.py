"""The Model aggregate's transitions, without I/O: what each changes, the events it raises,
and that a stale or repeated update changes nothing."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from visiona.kit.errors import InvalidArgument
from visiona.kit.events import (
    ModelReadyV1,
    ModelUnavailableV1,
    TrainingCanceledV1,
    TrainingFailedV1,
    TrainingProgressedV1,
    TrainingRequestedV1,
)
from visiona.training.domain.model import Model, ModelStatus, ProviderTraining

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
HOLD = uuid.uuid4()


def model(status: ModelStatus = ModelStatus.AWAITING_CREDITS, **fields: Any) -> Model:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "user_id": "user_1",
        "name": "me",
        "status": status.value,
        "preset": "balanced",
        "trigger_word": "vsnbcdfgh",
        "training_id": uuid.uuid4(),
        "photo_ids": [uuid.uuid4() for _ in range(10)],
        "hold_id": None,
        "dataset_key": None,
        "provider_model": None,
        "provider_training_id": None,
        "provider_status": None,
        "launch_attempted_at": None,
        "weights_url": None,
        "weights_key": None,
        "version": None,
        "progress": 0.0,
        "failure_reason": None,
        "failure_message": None,
        "work": None,
        "work_after": None,
        "work_attempts": 0,
        "lease_until": None,
        "provider_seen_at": None,
        "created_at": NOW - timedelta(hours=1),
        "queued_at": None,
        "started_at": None,
        "finished_at": None,
        "updated_at": NOW - timedelta(hours=1),
        "deleted_at": None,
        "dataset_purged_at": None,
    }
    return Model(**(values | fields))


def running(**fields: Any) -> Model:
    """A training the provider runs."""
    return model(
        ModelStatus.TRAINING,
        **{
            "provider_model": "visiona/vsn-1",
            "provider_training_id": "tr_1",
            "provider_status": "processing",
            "launch_attempted_at": NOW - timedelta(minutes=5),
            "work": "poll",
            "work_after": NOW,
            **fields,
        },
    )


def ready(**fields: Any) -> Model:
    return model(
        ModelStatus.SUCCEEDED,
        **{
            "version": "visiona/vsn-1:abc",
            "weights_key": "models/o/w.tar",
            "provider_status": "succeeded",
            "work": "verify",
            **fields,
        },
    )


def provider(status: str, **fields: Any) -> ProviderTraining:
    return ProviderTraining(id="tr_1", status=status, **fields)


def unchanged(m: Model) -> bool:
    return not m.pull_changes() and not m.pull_events()


# -- billing's credits ---------------------------------------------------------------------------


def test_reserved_credits_start_preparing_and_make_the_launch_due() -> None:
    m = model(work="ask_credits", work_attempts=3)
    assert m.credits_reserved(HOLD, NOW)
    assert m.pull_changes() == {
        "status": "preparing",
        "hold_id": HOLD,
        "work": "launch",
        "work_after": NOW,
        "work_attempts": 0,
    }
    (event,) = m.pull_events()
    assert isinstance(event, TrainingProgressedV1)
    assert (event.status, event.model_id) == ("preparing", m.id)


def test_a_repeated_reservation_changes_nothing() -> None:
    m = model(ModelStatus.PREPARING)
    assert not m.credits_reserved(HOLD, NOW)
    assert unchanged(m)


@pytest.mark.parametrize(
    ("status", "event_type", "reason"),
    [
        (ModelStatus.CANCELED, TrainingCanceledV1, "canceled_by_user"),
        (ModelStatus.FAILED, TrainingFailedV1, "provider_failed"),
    ],
)
def test_a_reservation_after_the_end_answers_the_outcome_again(
    status: ModelStatus, event_type: type, reason: str
) -> None:
    m = model(status, failure_reason=reason)
    assert not m.credits_reserved(HOLD, NOW)
    assert m.pull_changes() == {}
    (event,) = m.pull_events()
    assert isinstance(event, event_type)
    assert (event.training_id, event.reason) == (m.training_id, reason)


def test_rejected_credits_fail_a_waiting_model() -> None:
    m = model(work="ask_credits")
    assert m.credits_rejected("insufficient_credits", "costs 40; 3 available", NOW)
    changes = m.pull_changes()
    assert changes["status"] == "failed"
    assert changes["failure_reason"] == "insufficient_credits"
    assert changes["failure_message"] == "costs 40; 3 available"
    assert changes["finished_at"] == NOW
    assert (changes["work"], changes["work_after"]) == (None, None)
    (event,) = m.pull_events()
    assert isinstance(event, TrainingFailedV1)
    assert event.reason == "insufficient_credits"


def test_a_rejection_after_the_reservation_changes_nothing() -> None:
    m = model(ModelStatus.PREPARING, hold_id=HOLD)
    assert not m.credits_rejected("insufficient_credits", "late", NOW)
    assert unchanged(m)


def test_an_expired_hold_stops_a_running_training_at_the_provider() -> None:
    m = running()
    assert m.hold_expired(NOW)
    changes = m.pull_changes()
    assert (changes["status"], changes["failure_reason"]) == ("failed", "hold_expired")
    assert (changes["work"], changes["work_after"], changes["work_attempts"]) == (
        "cancel",
        NOW,
        0,
    )
    assert [type(e) for e in m.pull_events()] == [TrainingFailedV1]


def test_an_expired_hold_of_a_finished_model_changes_nothing() -> None:
    m = ready()
    assert not m.hold_expired(NOW)
    assert unchanged(m)


def test_credits_are_asked_again_while_billing_has_not_answered() -> None:
    m = model(work="ask_credits")
    assert m.ask_credits_again(60.0, NOW)
    assert m.pull_changes() == {"work_after": NOW + timedelta(seconds=60)}
    (event,) = m.pull_events()
    assert isinstance(event, TrainingRequestedV1)
    assert (event.training_id, event.preset) == (m.training_id, "balanced")


def test_credits_are_not_asked_again_once_answered() -> None:
    m = model(ModelStatus.PREPARING, work="launch")
    assert not m.ask_credits_again(60.0, NOW)
    assert unchanged(m)


# -- outcomes ------------------------------------------------------------------------------------


def test_fail_cuts_the_message_and_changes_nothing_the_second_time() -> None:
    m = model(ModelStatus.PREPARING, work="launch")
    assert m.fail("launch_failed", "x" * 900, NOW)
    assert len(m.pull_changes()["failure_message"]) == 500
    m.pull_events()
    assert not m.fail("launch_failed", "again", NOW)
    assert unchanged(m)


def test_a_failure_keeps_a_purge_that_is_due() -> None:
    m = running(work="purge")
    assert m.fail("provider_failed", "boom", NOW)
    changes = m.pull_changes()
    assert "work" not in changes and "work_after" not in changes


def test_cancel_hands_a_running_training_to_the_cancel_step() -> None:
    m = running()
    assert m.cancel(NOW)
    changes = m.pull_changes()
    assert changes["status"] == "canceled"
    assert changes["failure_reason"] == "canceled_by_user"
    assert changes["failure_message"] is None
    assert (changes["work"], changes["work_after"], changes["finished_at"]) == ("cancel", NOW, NOW)
    (event,) = m.pull_events()
    assert isinstance(event, TrainingCanceledV1)
    assert event.reason == "canceled_by_user"


def test_cancel_before_any_launch_has_nothing_to_stop() -> None:
    m = model(work="ask_credits")
    assert m.cancel(NOW, "deleted")
    changes = m.pull_changes()
    assert (changes["work"], changes["work_after"], changes["failure_reason"]) == (
        None,
        None,
        "deleted",
    )


def test_cancel_of_a_finished_model_changes_nothing() -> None:
    for status in (ModelStatus.SUCCEEDED, ModelStatus.FAILED, ModelStatus.CANCELED):
        m = model(status)
        assert not m.cancel(NOW)
        assert unchanged(m)


def test_succeed_makes_the_model_ready_and_schedules_its_version_check() -> None:
    m = running(version="visiona/vsn-1:abc", weights_url="https://x/w.tar", work="finalize")
    assert m.succeed("models/o/w.tar", 3600.0, NOW)
    assert m.pull_changes() == {
        "status": "succeeded",
        "weights_key": "models/o/w.tar",
        "progress": 1.0,
        "finished_at": NOW,
        "work": "verify",
        "work_after": NOW + timedelta(hours=1),
        "work_attempts": 0,
    }
    (event,) = m.pull_events()
    assert isinstance(event, ModelReadyV1)
    assert event.version == "visiona/vsn-1:abc"


def test_succeed_needs_a_version_and_a_model_not_finished() -> None:
    assert not running().succeed("k", 1.0, NOW)
    finished = model(ModelStatus.CANCELED, version="v")
    assert not finished.succeed("k", 1.0, NOW)
    assert unchanged(finished)


def test_a_ready_model_whose_version_is_gone_becomes_unavailable() -> None:
    m = ready()
    assert m.become_unavailable(NOW)
    changes = m.pull_changes()
    assert changes["status"] == "unavailable"
    assert changes["failure_reason"] == "provider_version_missing"
    assert "visiona/vsn-1:abc" in changes["failure_message"]
    assert (changes["work"], changes["work_after"]) == (None, None)
    (event,) = m.pull_events()
    assert isinstance(event, ModelUnavailableV1)
    assert not m.become_unavailable(NOW)


def test_only_a_ready_model_becomes_unavailable() -> None:
    m = running()
    assert not m.become_unavailable(NOW)
    assert unchanged(m)


# -- the provider's word -------------------------------------------------------------------------


def test_the_provider_starting_queues_the_model_and_pushes_the_poll_back() -> None:
    m = model(ModelStatus.PREPARING, work="poll", provider_training_id="tr_1")
    assert m.apply_provider_status(provider("starting"), 30.0, NOW)
    assert m.pull_changes() == {
        "provider_seen_at": NOW,
        "provider_status": "starting",
        "work_after": NOW + timedelta(seconds=30),
        "status": "queued",
    }
    (event,) = m.pull_events()
    assert isinstance(event, TrainingProgressedV1)
    assert event.status == "queued"


def test_processing_starts_the_training_and_reports_progress() -> None:
    m = model(ModelStatus.QUEUED, provider_training_id="tr_1")
    assert m.apply_provider_status(provider("processing", logs="step 450/1000"), 30.0, NOW)
    changes = m.pull_changes()
    assert (changes["status"], changes["started_at"], changes["progress"]) == (
        "training",
        NOW,
        0.45,
    )
    assert "work_after" not in changes  # no poll is due
    (event,) = m.pull_events()
    assert isinstance(event, TrainingProgressedV1)
    assert event.progress == 0.45


def test_progress_never_goes_back_nor_reaches_one_before_the_weights() -> None:
    m = running(progress=0.5)
    assert not m.apply_provider_status(provider("processing", logs="40%"), 30.0, NOW)
    assert m.pull_changes().keys() == {"provider_seen_at", "provider_status", "work_after"}
    assert m.pull_events() == []
    assert m.apply_provider_status(provider("processing", logs="100%"), 30.0, NOW)
    assert m.pull_changes()["progress"] == 0.99


def test_a_stale_status_only_records_that_the_provider_spoke() -> None:
    m = running()
    assert not m.apply_provider_status(provider("starting"), 30.0, NOW)
    assert m.state is ModelStatus.TRAINING
    assert m.pull_events() == []


def test_the_provider_s_success_hands_the_weights_to_finalize() -> None:
    m = running(started_at=NOW - timedelta(minutes=1))
    done = provider("succeeded", version="visiona/vsn-1:abc", weights_url="https://x/w.tar")
    assert m.apply_provider_status(done, 30.0, NOW)
    changes = m.pull_changes()
    assert (changes["work"], changes["work_after"], changes["work_attempts"]) == (
        "finalize",
        NOW,
        0,
    )
    assert (changes["version"], changes["weights_url"], changes["progress"]) == (
        "visiona/vsn-1:abc",
        "https://x/w.tar",
        0.99,
    )
    assert m.state is ModelStatus.TRAINING  # ready only once the weights are ours
    assert m.pull_events() == []


def test_a_success_jumping_over_the_start_records_the_start() -> None:
    m = model(ModelStatus.QUEUED, provider_training_id="tr_1")
    done = provider("succeeded", version="v", weights_url="https://x/w.tar")
    assert m.apply_provider_status(done, 30.0, NOW)
    changes = m.pull_changes()
    assert (changes["status"], changes["started_at"]) == ("training", NOW)


def test_a_success_keeps_a_cancel_or_purge_that_is_due() -> None:
    m = running(work="cancel")
    done = provider("succeeded", version="v", weights_url="https://x/w.tar")
    assert m.apply_provider_status(done, 30.0, NOW)
    assert "work" not in m.pull_changes()


def test_a_success_without_weights_fails_the_model() -> None:
    m = running()
    assert m.apply_provider_status(provider("succeeded"), 30.0, NOW)
    changes = m.pull_changes()
    assert (changes["status"], changes["failure_reason"]) == ("failed", "provider_output_invalid")
    assert changes["provider_status"] == "succeeded"
    assert [type(e) for e in m.pull_events()] == [TrainingFailedV1]


def test_the_provider_s_failure_fails_the_model_with_its_error() -> None:
    m = running()
    assert m.apply_provider_status(provider("failed", error="CUDA out of memory"), 30.0, NOW)
    changes = m.pull_changes()
    assert (changes["failure_reason"], changes["failure_message"]) == (
        "provider_failed",
        "CUDA out of memory",
    )
    # The provider's training is over: nothing left to cancel there.
    assert (changes["work"], changes["work_after"]) == (None, None)


def test_the_provider_s_cancel_cancels_the_model() -> None:
    m = running()
    assert m.apply_provider_status(provider("canceled"), 30.0, NOW)
    assert m.pull_changes()["failure_reason"] == "provider_canceled"
    assert [type(e) for e in m.pull_events()] == [TrainingCanceledV1]


def test_news_about_a_finished_model_only_records_the_provider_s_status() -> None:
    m = model(ModelStatus.CANCELED, provider_training_id="tr_1", work="cancel")
    assert not m.apply_provider_status(provider("processing", logs="50%"), 30.0, NOW)
    assert m.pull_changes() == {"provider_seen_at": NOW, "provider_status": "processing"}
    assert m.pull_events() == []


def test_an_unknown_provider_status_only_records_it() -> None:
    m = running()
    assert not m.apply_provider_status(provider("mystery"), 30.0, NOW)
    assert m.state is ModelStatus.TRAINING


def test_a_poll_that_finds_the_training_over_ends_the_polling() -> None:
    m = running()
    assert m.polled(provider("failed"), 30.0, NOW)
    changes = m.pull_changes()
    assert (changes["status"], changes["work"], changes["work_after"]) == ("failed", None, None)


def test_a_poll_of_a_running_training_polls_again_later() -> None:
    m = running()
    m.polled(provider("processing"), 30.0, NOW)
    assert m.pull_changes()["work_after"] == NOW + timedelta(seconds=30)
    assert m.work == "poll"


# -- launch bookkeeping --------------------------------------------------------------------------


def test_the_launch_records_its_dataset_destination_and_attempt() -> None:
    m = model(ModelStatus.PREPARING, work="launch")
    m.dataset_built("datasets/o/m.zip")
    m.destination_created("visiona/vsn-1")
    assert m.launch_attempted(NOW, seen=None)
    assert m.pull_changes() == {
        "dataset_key": "datasets/o/m.zip",
        "provider_model": "visiona/vsn-1",
        "launch_attempted_at": NOW,
    }


def test_no_launch_attempt_once_the_model_stopped_preparing() -> None:
    m = model(ModelStatus.CANCELED)
    assert not m.launch_attempted(NOW, seen=None)
    assert unchanged(m)


def test_a_launched_training_queues_the_model_and_is_polled_when_quiet() -> None:
    m = model(ModelStatus.PREPARING, work="launch", launch_attempted_at=NOW)
    assert m.launched(provider("starting"), 30.0, NOW)
    assert m.pull_changes() == {
        "provider_training_id": "tr_1",
        "provider_status": "starting",
        "provider_seen_at": NOW,
        "status": "queued",
        "queued_at": NOW,
        "work": "poll",
        "work_after": NOW + timedelta(seconds=30),
    }
    (event,) = m.pull_events()
    assert isinstance(event, TrainingProgressedV1)
    assert event.status == "queued"


def test_a_training_launched_after_a_cancel_is_stopped() -> None:
    m = model(ModelStatus.CANCELED, launch_attempted_at=NOW, work=None)
    assert not m.launched(provider("starting"), 30.0, NOW)
    changes = m.pull_changes()
    assert (changes["work"], changes["work_after"], changes["work_attempts"]) == ("cancel", NOW, 0)
    assert m.pull_events() == []


def test_a_training_launched_while_the_model_is_purged_is_left_to_the_purge() -> None:
    m = model(ModelStatus.CANCELED, launch_attempted_at=NOW, work="purge")
    assert not m.launched(provider("starting"), 30.0, NOW)
    assert m.work == "purge"


def test_the_cancel_step_done_records_the_provider_stopped() -> None:
    m = model(ModelStatus.CANCELED, work="cancel", provider_training_id="tr_1")
    assert m.canceled_at_provider()
    assert m.pull_changes() == {"work": None, "work_after": None, "provider_status": "canceled"}
    assert not m.canceled_at_provider()


def test_a_model_still_running_at_the_provider_is_known() -> None:
    assert running().provider_running
    assert model(launch_attempted_at=NOW).provider_running
    assert not running(provider_status="succeeded").provider_running
    assert not model().provider_running


# -- the trained version -------------------------------------------------------------------------


def test_a_missing_version_makes_the_check_due_at_once() -> None:
    m = ready(work_after=NOW + timedelta(hours=6), work_attempts=2)
    assert m.check_version(NOW)
    assert m.pull_changes() == {"work": "verify", "work_after": NOW, "work_attempts": 0}


@pytest.mark.parametrize(
    "m",
    [running(), ready(work="purge"), model(ModelStatus.UNAVAILABLE)],
    ids=["not ready", "being deleted", "unavailable"],
)
def test_no_version_check_for_a_model_without_one_to_check(m: Model) -> None:
    assert not m.check_version(NOW)
    assert unchanged(m)


def test_a_version_still_there_is_checked_again_later() -> None:
    m = ready()
    assert m.version_checked(True, 3600.0, NOW)
    assert m.pull_changes() == {"work_after": NOW + timedelta(hours=1)}
    assert m.state is ModelStatus.SUCCEEDED


def test_a_version_gone_makes_the_model_unavailable() -> None:
    m = ready()
    assert m.version_checked(False, 3600.0, NOW)
    assert m.state is ModelStatus.UNAVAILABLE
    assert [type(e) for e in m.pull_events()] == [ModelUnavailableV1]


def test_a_version_answer_for_a_model_no_longer_verifying_changes_nothing() -> None:
    m = ready(work="purge")
    assert not m.version_checked(False, 3600.0, NOW)
    assert unchanged(m)


# -- the user's requests -------------------------------------------------------------------------


def test_rename_trims_and_checks_the_name() -> None:
    m = ready()
    assert m.rename("  Portrait  ")
    assert m.pull_changes() == {"name": "Portrait"}
    with pytest.raises(InvalidArgument):
        m.rename(" ")


def test_a_purge_cancels_a_running_training_and_hides_the_model() -> None:
    m = running()
    assert m.schedule_purge("deleted", NOW)
    changes = m.pull_changes()
    assert (changes["status"], changes["failure_reason"]) == ("canceled", "deleted")
    assert (changes["deleted_at"], changes["work"], changes["work_after"]) == (NOW, "purge", NOW)
    assert not m.visible
    assert [type(e) for e in m.pull_events()] == [TrainingCanceledV1]


def test_a_purge_of_a_ready_model_raises_no_event() -> None:
    m = ready()
    assert m.schedule_purge("account_erased", NOW)
    assert m.pull_changes()["work"] == "purge"
    assert m.pull_events() == []
    assert m.state is ModelStatus.SUCCEEDED


def test_the_retention_records_the_dataset_purged() -> None:
    m = replace(ready(), dataset_key="datasets/o/m.zip")
    assert m.dataset_purged(NOW)
    assert m.pull_changes() == {"dataset_purged_at": NOW}


def test_changes_and_events_are_handed_over_once() -> None:
    m = running()
    m.cancel(NOW)
    assert m.pull_changes() and m.pull_events()
    assert unchanged(m)
