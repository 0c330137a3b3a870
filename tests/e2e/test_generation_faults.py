"""Generation under faults: the generation service killed while it copies the outputs
finishes after a restart, stores each image once and is charged exactly what was delivered;
the live stream shows each step of the journey."""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

import httpx
import pytest

from tests.e2e.test_billing import buy_starter, ledger, wait_balance
from tests.e2e.test_generation import (
    AFTER_TRAINING,
    IMAGE,
    STARTER,
    generate,
    ingest_under_way,
    wait_generation,
)
from tests.e2e.training_helpers import emulator, trained_model
from tests.support.stack import RunningStack
from tests.support.waiting import wait_for


@pytest.mark.disruptive
def test_generation_killed_mid_ingest_finishes_after_restart(
    stack: RunningStack,
    owner: tuple[str, dict[str, Any]],
) -> None:
    user, model = owner
    # Each output takes 1.5 s to download: the service dies while copying them.
    emulator(stack, "config", {"file_latency_ms": 1500})
    gen = generate(stack, user, model_id=model["id"], num_outputs=3).json()
    ingest_under_way(stack, gen["id"])
    stack.processes.kill("generation")
    try:
        emulator(stack, "config", {"file_latency_ms": 0})
    finally:
        stack.processes.start("generation")
        stack.processes.wait_ready()
    done = wait_generation(stack, user, gen["id"])
    assert done["status"] == "succeeded", done
    assert done["delivered"] == 3 and [i["index"] for i in done["images"]] == [0, 1, 2]
    stored = stack.admin_sql(
        "SELECT count(*), count(DISTINCT idx) FROM generation.images WHERE generation_id = %s",
        uuid.UUID(gen["id"]),
    )
    assert stored == [(3, 3)]
    wait_balance(stack, user, AFTER_TRAINING - 3 * IMAGE)
    kinds = [e["kind"] for e in ledger(stack, user)]
    assert kinds.count("capture") == 2  # the training and this generation, once each


def test_the_live_stream_shows_each_step_from_training_to_images(stack: RunningStack) -> None:
    user = f"watcher{uuid.uuid4().hex[:8]}"
    events: list[tuple[str, dict[str, Any]]] = []
    stop = threading.Event()
    connected = threading.Event()

    def listen() -> None:
        with (
            httpx.Client(timeout=httpx.Timeout(5.0, read=None)) as client,
            client.stream("GET", f"{stack.url}/v1/events", headers=stack.auth(user)) as response,
        ):
            connected.set()
            name = ""
            for line in response.iter_lines():
                if stop.is_set():
                    return
                if line.startswith("event:"):
                    name = line.partition(":")[2].strip()
                elif line.startswith("data:") and name:
                    events.append((name, json.loads(line.partition(":")[2])))
                    name = ""

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert connected.wait(10)
    buy_starter(stack, user)
    wait_balance(stack, user, STARTER)
    model = trained_model(stack, user)
    gen = generate(stack, user, model_id=model["id"], num_outputs=2).json()
    wait_generation(stack, user, gen["id"])
    wait_balance(stack, user, AFTER_TRAINING - 2 * IMAGE)

    def names() -> list[str]:
        return [name for name, _ in events]

    wait_for(
        "the generation's outcome on the stream",
        names,
        lambda n: (
            "generation.generation.succeeded.v1" in n and n.count("billing.credits.changed.v1") >= 5
        ),
    )
    stop.set()
    seen = names()
    steps = [
        "training.training.requested.v1",
        "training.model.progressed.v1",
        "training.model.ready.v1",
        "generation.generation.requested.v1",
        "generation.generation.succeeded.v1",
    ]
    positions = [seen.index(step) for step in steps]
    assert positions == sorted(positions), seen
    progressed = [d["status"] for n, d in events if n == "training.model.progressed.v1"]
    assert progressed[:2] == ["preparing", "queued"], progressed
    causes = [d["cause"] for n, d in events if n == "billing.credits.changed.v1"]
    assert causes[:1] == ["purchase"] and causes.count("hold") == 2 and causes.count("settle") == 2
    succeeded = next(d for n, d in events if n == "generation.generation.succeeded.v1")
    assert (succeeded["requested"], succeeded["delivered"]) == (2, 2)
    assert all(d.get("user_id") == f"user_{user}" for _, d in events)
