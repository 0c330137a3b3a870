"""Training under faults: the training service killed mid-training or mid-launch loses
nothing and starts nothing twice; it resumes from the provider's retried webhooks or the
reconciler, and billing captures exactly once."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.test_billing import ledger, wait_balance
from tests.e2e.test_training import (
    STARTER_CREDITS,
    TRAINING_PRICE,
    model_row,
    ready_to_train,
)
from tests.e2e.training_helpers import (
    create_model,
    emulator,
    replicate_get,
    replicate_url,
    wait_model,
)
from tests.support.stack import RunningStack
from tests.support.waiting import wait_for


def deliveries_of(stack: RunningStack, provider_id: str) -> list[dict[str, Any]]:
    """The emulator's webhook attempts about one provider job, each with the job's status."""
    listed = httpx.get(f"{replicate_url(stack)}/_emulator/deliveries", timeout=10).json()
    return [d for d in listed if d["object_id"] == provider_id]


def ok(delivery: dict[str, Any]) -> bool:
    return delivery["status_code"] is not None and 200 <= delivery["status_code"] < 300


def trainings_into(stack: RunningStack, destination: str) -> list[dict[str, Any]]:
    """The trainings the emulator holds for ``destination`` (its control route: not held back
    by ``answer_delay_ms`` like the API's list)."""
    trainings = httpx.get(f"{replicate_url(stack)}/_emulator/trainings", timeout=10).json()
    return [t for t in trainings if t["destination"] == destination]


def restart_training(stack: RunningStack) -> None:
    stack.processes.start("training")
    stack.processes.wait_ready()


@pytest.mark.disruptive
def test_training_killed_mid_training_finishes_after_restart(stack: RunningStack) -> None:
    user, photo_ids = ready_to_train(stack, "crashy")
    emulator(stack, "config", {"training_duration_s": 3, "retry_delays_s": [0.5, 1, 1, 2, 4, 8]})
    model = create_model(stack, user, photo_ids).json()
    wait_model(stack, user, model["id"], lambda m: m["status"] in ("queued", "training"))
    provider_id = model_row(stack, model["id"])["provider_training_id"]
    stack.processes.kill("training")
    try:
        # The provider finishes while we are down; its webhook meets a 503 and is retried.
        wait_for(
            "the provider's training to end",
            lambda: replicate_get(stack, f"/v1/trainings/{provider_id}").json()["status"],
            lambda s: s == "succeeded",
        )
        wait_for(
            "the provider's completion webhook to meet the dead service",
            lambda: deliveries_of(stack, provider_id),
            lambda ds: any(d["event"] == "completed" and not ok(d) for d in ds),
        )
    finally:
        restart_training(stack)
    ready = wait_model(stack, user, model["id"], timeout_s=60)
    assert ready["status"] == "succeeded", ready
    completions = [d for d in deliveries_of(stack, provider_id) if d["event"] == "completed"]
    assert not ok(completions[0]), completions  # refused while the service was down
    wait_balance(stack, user, STARTER_CREDITS - TRAINING_PRICE)
    kinds = [e["kind"] for e in ledger(stack, user)]
    assert kinds.count("capture") == 1 and kinds.count("hold") == 1


@pytest.mark.disruptive
def test_training_killed_while_starting_the_provider_job_starts_it_once(
    stack: RunningStack,
) -> None:
    user, photo_ids = ready_to_train(stack, "launchcrash")
    # Every provider call is applied, then answered 3 s later: the service dies after the
    # provider started the training and before it heard so. The kill waits for the provider
    # to hold the training (killed sooner, the request may never have left the service).
    emulator(stack, "config", {"answer_delay_ms": 3000})
    try:
        model = create_model(stack, user, photo_ids).json()
        attempted = wait_for(
            "the launch attempt recorded",
            lambda: model_row(stack, model["id"]),
            lambda row: row["launch_attempted_at"] is not None,
        )
        destination = attempted["provider_model"]
        wait_for(
            "the provider to have started the training",
            lambda: trainings_into(stack, destination),
            lambda mine: len(mine) == 1,
        )
        stack.processes.kill("training")
        # The answer was still on its way: the service never heard of the training.
        assert model_row(stack, model["id"])["provider_training_id"] is None
    finally:
        emulator(stack, "config", {"answer_delay_ms": 0})
    restart_training(stack)
    ready = wait_model(stack, user, model["id"], timeout_s=60)
    assert ready["status"] == "succeeded", ready
    mine = trainings_into(stack, destination)
    assert len(mine) == 1, mine
    wait_balance(stack, user, STARTER_CREDITS - TRAINING_PRICE)
    # The restarted service found the orphaned training and adopted it.
    assert "training.adopted" in stack.processes.log("training")
