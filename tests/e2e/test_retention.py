"""Retention of training photos and datasets (ADR 0007), end to end: the training process's
own periodic sweep, with the shipped 30-day retention, against real S3 and Postgres.

The training service is restarted for this module with a half-second sweep interval; the
tests age rows by pushing their timestamps back (as a superuser), never by shortening the
retention, so the rest of the session's data is never due.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.test_training import funded_user, model_row, object_exists, ready_to_train
from tests.e2e.training_helpers import (
    accepted_photo_ids,
    api,
    create_model,
    emulator,
    replicate_get,
    wait_model,
)
from tests.support.stack import RunningStack
from tests.support.waiting import wait_for

SWEEP_INTERVAL_S = "0.5"
RETENTION_DAYS = 30
SWEPT = "training.retention_swept"
# Generous: a sweep is quick, but a loaded machine slows every process down.
WAIT_S = 60.0
# The module runs training with another sweep interval (it restarts the process).
pytestmark = pytest.mark.disruptive


@pytest.fixture(scope="module", autouse=True)
def sweeping(stack: RunningStack) -> Iterator[None]:
    """The training process with a fast retention sweep (the retention itself as shipped)."""
    argv, env = stack.processes.specs["training"]
    assert "TRAINING_PHOTO_RETENTION_S" not in env
    stack.processes.stop("training")
    stack.processes.specs["training"] = (
        argv,
        env | {"TRAINING_RETENTION_SWEEP_INTERVAL_S": SWEEP_INTERVAL_S},
    )
    try:
        stack.processes.start("training")
        stack.processes.wait_ready()
        yield
    finally:
        stack.processes.stop("training")
        stack.processes.specs["training"] = (argv, env)
        stack.processes.start("training")
        stack.processes.wait_ready()


def photo_keys(stack: RunningStack, photo_ids: list[str]) -> dict[str, str]:
    """Object key by photo id, for the photos whose row still exists."""
    rows = stack.admin_sql(
        "SELECT id::text, object_key FROM training.photos WHERE id = ANY(%s)",
        [uuid.UUID(p) for p in photo_ids],
    )
    return {str(pid): str(key) for pid, key in rows}


def age_photos(stack: RunningStack, photo_ids: list[str], days: int) -> None:
    stack.admin_sql(
        "UPDATE training.photos SET created_at = created_at - make_interval(days => %s) "
        "WHERE id = ANY(%s)",
        days,
        [uuid.UUID(p) for p in photo_ids],
    )


def end_training_ago(stack: RunningStack, model_id: str, days: int) -> None:
    """Move the model's whole life ``days`` back, as if it had ended that long ago."""
    stack.admin_sql(
        "UPDATE training.models SET "
        "created_at = created_at - make_interval(days => %s), "
        "queued_at = queued_at - make_interval(days => %s), "
        "started_at = started_at - make_interval(days => %s), "
        "finished_at = finished_at - make_interval(days => %s) WHERE id = %s",
        days,
        days,
        days,
        days,
        uuid.UUID(model_id),
    )


def sweeps(stack: RunningStack) -> int:
    return stack.processes.log("training").count(SWEPT)


def wait_full_sweeps(stack: RunningStack, count: int = 2) -> None:
    """Wait until ``count`` sweeps have run from start to end after this call."""
    start = sweeps(stack)
    # The sweep under way when called may have read the rows before the change: not counted.
    wait_for(
        f"{count} retention sweeps",
        lambda: sweeps(stack),
        lambda n: n >= start + count + 1,
        timeout_s=WAIT_S,
    )


def provider_files(stack: RunningStack) -> list[dict[str, Any]]:
    response = replicate_get(stack, "/v1/files")
    assert response.status_code == 200, response.text
    return list(response.json()["results"])


def test_an_ended_training_s_photos_and_dataset_are_deleted_after_the_retention_and_the_model_stays(
    stack: RunningStack,
) -> None:
    user = funded_user(stack, "retained")
    files_before = provider_files(stack)
    trained = accepted_photo_ids(stack, user, 10)
    (unused,) = accepted_photo_ids(stack, user, 1, first=10)
    created = create_model(stack, user, trained, preset="fast")
    assert created.status_code == 202, created.text
    model_id = created.json()["id"]
    assert wait_model(stack, user, model_id)["status"] == "succeeded"

    row = model_row(stack, model_id)
    dataset, weights = row["dataset_key"], row["weights_key"]
    keys = photo_keys(stack, [*trained, unused])
    assert len(keys) == 11 and object_exists(stack, dataset)
    assert all(object_exists(stack, k) for k in keys.values())
    # Provider side: the trainer was given our presigned URL; nothing went to its Files API.
    training = replicate_get(stack, f"/v1/trainings/{row['provider_training_id']}").json()
    assert training["input"]["input_images"].startswith(f"http://{stack.cfg.s3.endpoint}/")  # type: ignore[union-attr]
    assert provider_files(stack) == files_before

    # Photos older than the retention: the unused one goes; the trained ones and the dataset
    # stay while the training ended less than the retention ago.
    age_photos(stack, [*trained, unused], RETENTION_DAYS + 10)
    end_training_ago(stack, model_id, RETENTION_DAYS - 1)
    wait_for(
        "the unused photo deleted", lambda: photo_keys(stack, [unused]), lambda k: not k, WAIT_S
    )
    assert not object_exists(stack, keys[unused])
    wait_full_sweeps(stack)
    assert photo_keys(stack, trained) == {p: keys[p] for p in trained}
    assert object_exists(stack, dataset)
    assert model_row(stack, model_id)["dataset_purged_at"] is None

    end_training_ago(stack, model_id, 2)
    wait_purged(stack, model_id, trained, [dataset, *keys.values()])
    with api(stack, user) as c:
        assert c.get("/v1/photos").json()["photos"] == []
        assert c.get(f"/v1/photos/{trained[0]}").status_code == 404
        # The model and its weights are not subject to the retention.
        model = c.get(f"/v1/models/{model_id}").json()
    assert model["status"] == "succeeded" and model["version"], model
    assert object_exists(stack, weights)


def wait_purged(stack: RunningStack, model_id: str, photos: list[str], objects: list[str]) -> None:
    """Once the sweep deleted the model's ``photos`` and its dataset: none of ``objects`` (their
    keys) is left in the bucket."""
    wait_for(
        "the photos and the dataset deleted",
        lambda: (photo_keys(stack, photos), model_row(stack, model_id)),
        lambda found: not found[0] and found[1]["dataset_purged_at"] is not None,
        timeout_s=WAIT_S,
    )
    assert not [k for k in objects if object_exists(stack, k)]


def test_photos_of_a_training_in_progress_or_ended_within_the_retention_are_kept(
    stack: RunningStack,
) -> None:
    user, photos = ready_to_train(stack, "inprogress")
    emulator(stack, "config", {"training_duration_s": 600})
    created = create_model(stack, user, photos, preset="fast")
    assert created.status_code == 202, created.text
    model_id = created.json()["id"]
    wait_model(stack, user, model_id, lambda m: m["status"] == "training")
    dataset = model_row(stack, model_id)["dataset_key"]
    keys = photo_keys(stack, photos)

    age_photos(stack, photos, RETENTION_DAYS + 10)
    wait_full_sweeps(stack)
    assert photo_keys(stack, photos) == keys
    assert all(object_exists(stack, k) for k in [dataset, *keys.values()])

    # Ended just now: kept for the retention from now.
    with api(stack, user) as c:
        assert c.post(f"/v1/models/{model_id}/cancel").status_code == 200
    wait_model(stack, user, model_id, lambda m: m["status"] == "canceled")
    wait_full_sweeps(stack)
    assert photo_keys(stack, photos) == keys and object_exists(stack, dataset)

    end_training_ago(stack, model_id, RETENTION_DAYS + 1)
    wait_purged(stack, model_id, photos, [dataset, *keys.values()])


def test_a_photo_never_used_goes_after_the_retention_from_its_upload(
    stack: RunningStack,
) -> None:
    user = f"unused{uuid.uuid4().hex[:8]}"
    old, recent = accepted_photo_ids(stack, user, 2)
    keys = photo_keys(stack, [old, recent])
    age_photos(stack, [old], RETENTION_DAYS + 1)
    age_photos(stack, [recent], RETENTION_DAYS - 1)
    wait_for("the old photo deleted", lambda: photo_keys(stack, [old]), lambda k: not k, WAIT_S)
    assert not object_exists(stack, keys[old])
    wait_full_sweeps(stack)
    assert photo_keys(stack, [recent]) == {recent: keys[recent]}
    assert object_exists(stack, keys[recent])
