"""Generation's part in the user's erasure and export sagas, driven through the bus as the
gateway drives them: everything of the user goes (rows, S3 objects, the prediction still
running at Replicate, published events), nothing of anyone else, in rounds that answer again
when asked again, also across a SIGKILL; an export part holds the user's records and images.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.saga_helpers import (
    EventProbe,
    purged_by,
    slowed_and_restarted,
    wait_seen,
)
from tests.e2e.test_generation import (
    generate,
    ingest_under_way,
    prediction_started,
    ready_owner,
    row,
    wait_generation,
)
from tests.e2e.training_helpers import (
    api,
    emulator,
    objects_under,
    read_object,
    replicate_config,
    replicate_get,
    storage_owner,
)
from tests.support.rows import rows_naming
from tests.support.stack import RunningStack
from tests.support.waiting import wait_for
from visiona.kit.events import (
    ErasureRequestedV1,
    Event,
    ExportRequestedV1,
    GenerationAccountExportedV1,
    GenerationAccountPurgedV1,
)

PURGED = GenerationAccountPurgedV1.routing_key
EXPORTED = GenerationAccountExportedV1.routing_key


def finished_generation(
    stack: RunningStack, user: str, model: dict[str, Any], **body: Any
) -> dict[str, Any]:
    created = generate(stack, user, model_id=model["id"], **body)
    assert created.status_code == 202, created.text
    done = wait_generation(stack, user, created.json()["id"])
    assert done["status"] == "succeeded", done
    return done


def generation_in_flight(stack: RunningStack, user: str, model: dict[str, Any]) -> str:
    """A generation whose prediction runs at Replicate for the next 30 s; its id."""
    emulator(stack, "config", {"prediction_duration_s": 30})
    created = generate(stack, user, model_id=model["id"])
    assert created.status_code == 202, created.text
    gen_id = str(created.json()["id"])
    prediction_started(stack, gen_id, timeout_s=30)
    return gen_id


def user_tables(stack: RunningStack) -> list[str]:
    return [
        str(t)
        for (t,) in stack.admin_sql(
            "SELECT table_name FROM information_schema.columns WHERE table_schema = "
            "'generation' AND column_name = 'user_id' ORDER BY 1"
        )
    ]


def count(stack: RunningStack, query: str, *params: object) -> int:
    value = stack.admin_sql(query, *params)[0][0]
    assert isinstance(value, int)
    return value


def webhook_rows(stack: RunningStack, prediction_ids: list[str]) -> int:
    return count(
        stack,
        "SELECT count(*) FROM generation.replicate_webhooks WHERE provider_id = ANY(%s)",
        prediction_ids,
    )


def abandoned_ingests(stack: RunningStack) -> int:
    """Ingest steps that ended on finding their generation ended or erased meanwhile (and
    dropped what they had copied)."""
    return stack.processes.log("generation").count('"generation.ingest_abandoned"')


def purged(deletion_id: uuid.UUID, round_: int) -> Callable[[Event], bool]:
    return purged_by(GenerationAccountPurgedV1, deletion_id, round_)


def answers(probe: EventProbe, deletion_id: uuid.UUID, round_: int) -> list[Any]:
    return [e for e in probe.seen if purged(deletion_id, round_)(e)]


async def answer(
    probe: EventProbe, deletion_id: uuid.UUID, round_: int, timeout_s: float = 60
) -> GenerationAccountPurgedV1:
    event = await probe.wait_for(purged(deletion_id, round_), timeout_s)
    assert isinstance(event, GenerationAccountPurgedV1)
    return event


def prediction_status(stack: RunningStack, prediction_id: str) -> str:
    r = replicate_get(stack, f"/v1/predictions/{prediction_id}")
    assert r.status_code == 200, r.text
    return str(r.json()["status"])


async def test_erasure_removes_everything_of_the_user_and_nothing_of_anyone_else(
    stack: RunningStack,
) -> None:
    a, a_model = ready_owner(stack, "erased")
    b, b_model = ready_owner(stack, "kept")
    a_id, b_id = f"user_{a}", f"user_{b}"
    finished = [finished_generation(stack, a, a_model) for _ in range(2)]
    b_gen = finished_generation(stack, b, b_model)
    in_flight = generation_in_flight(stack, a, a_model)
    in_flight_prediction = str(row(stack, in_flight)["provider_prediction_id"])
    finished_predictions = [str(row(stack, g["id"])["provider_prediction_id"]) for g in finished]

    # What there is to remove, and what must stay.
    a_owner, b_owner = (storage_owner(stack, "generation", u) for u in (a_id, b_id))
    a_objects = objects_under(stack, f"images/{a_owner}/")
    assert len(a_objects) == 4  # two images, two thumbnails
    assert webhook_rows(stack, finished_predictions) > 0
    before = rows_naming(stack.admin_sql, "generation", a_id)
    assert before["generations"] == 3 and before["images"] == 2 and before["outbox"] > 0
    b_rows, b_objects = (
        rows_naming(stack.admin_sql, "generation", b_id),
        objects_under(stack, f"images/{b_owner}/"),
    )
    assert b_rows["images"] == 1 and len(b_objects) == 2

    deletion = uuid.uuid4()
    async with EventProbe(stack, [PURGED]) as probe:
        await probe.publish(ErasureRequestedV1(user_id=a_id, deletion_id=deletion, round=1))
        first = await answer(probe, deletion, 1)
        assert first.removed > 0
        assert first.user_id is None

        assert set(user_tables(stack)) >= {"generations", "images", "erasures", "exports"}
        assert rows_naming(stack.admin_sql, "generation", a_id) == {}
        assert webhook_rows(stack, finished_predictions) == 0
        assert [k for k in objects_under(stack, "images/") if a_id in k or a_owner in k] == []
        assert prediction_status(stack, in_flight_prediction) == "canceled"
        # The other user keeps everything, still reachable through the API.
        assert rows_naming(stack.admin_sql, "generation", b_id) == b_rows
        assert objects_under(stack, f"images/{b_owner}/") == b_objects
        with api(stack, b) as c:
            assert c.get(f"/v1/generations/{b_gen['id']}").json()["status"] == "succeeded"
            assert len(c.get("/v1/images").json()["images"]) == 1
        with api(stack, a) as c:
            assert c.get("/v1/generations").json()["generations"] == []

        # The next round finds nothing; a round asked again is answered again.
        await probe.publish(ErasureRequestedV1(user_id=a_id, deletion_id=deletion, round=2))
        second = await answer(probe, deletion, 2)
        assert second.removed == 0
        await probe.publish(ErasureRequestedV1(user_id=a_id, deletion_id=deletion, round=2))
        again = await wait_seen(probe, purged(deletion, 2), 2)
        assert [e.removed for e in again] == [0, 0]
        assert len(answers(probe, deletion, 1)) == 1
    assert rows_naming(stack.admin_sql, "generation", a_id) == {}


@pytest.mark.disruptive
async def test_erasure_killed_midway_completes_after_a_restart(stack: RunningStack) -> None:
    a, model = ready_owner(stack, "killed")
    a_id = f"user_{a}"
    finished_generation(stack, a, model)
    a_owner = storage_owner(stack, "generation", a_id)
    in_flight = generation_in_flight(stack, a, model)
    prediction = str(row(stack, in_flight)["provider_prediction_id"])

    deletion = uuid.uuid4()
    async with EventProbe(stack, [PURGED]) as probe:
        # Every Replicate call now takes 4 s: the erasure waits on one (a poll it lets finish,
        # or its own cancel) when it is killed.
        with slowed_and_restarted(stack, "generation", replicate_config(stack)):
            await probe.publish(ErasureRequestedV1(user_id=a_id, deletion_id=deletion, round=1))
            wait_for(
                "the erasure to stop the generation",
                lambda: row(stack, in_flight)["failure_reason"],
                lambda reason: reason == "account_erased",
                timeout_s=30,
            )
            await asyncio.sleep(0.5)
            # Not answered yet: the row goes with the answer.
            assert stack.admin_sql("SELECT count(*) FROM generation.erasures") == [(1,)]
            assert answers(probe, deletion, 1) == []
            stack.processes.kill("generation")
        done = await answer(probe, deletion, 1, timeout_s=90)
    assert done.removed > 0
    assert rows_naming(stack.admin_sql, "generation", a_id) == {}
    assert objects_under(stack, f"images/{a_owner}/") == {}
    assert prediction_status(stack, prediction) == "canceled"


async def test_an_ingest_under_way_stores_nothing_after_the_erasure(stack: RunningStack) -> None:
    a, model = ready_owner(stack, "ingesting")
    a_id = f"user_{a}"
    # Each output takes 3 s to download: the erasure arrives while they are being copied.
    emulator(stack, "config", {"file_latency_ms": 3000})
    gen = generate(stack, a, model_id=model["id"], num_outputs=2).json()
    ingest_under_way(stack, gen["id"])
    abandoned = abandoned_ingests(stack)
    deletion = uuid.uuid4()
    async with EventProbe(stack, [PURGED]) as probe:
        await probe.publish(ErasureRequestedV1(user_id=a_id, deletion_id=deletion, round=1))
        await answer(probe, deletion, 1)
    assert rows_naming(stack.admin_sql, "generation", a_id) == {}
    # The ingest's downloads end after the purge; the step finds its generation ended or
    # gone and drops what it copied meanwhile.
    wait_for("the ingest to give up", lambda: abandoned_ingests(stack), lambda n: n > abandoned)
    assert [k for k in objects_under(stack, "images/") if gen["id"] in k] == []
    assert count(stack, "SELECT count(*) FROM generation.images WHERE user_id = %s", a_id) == 0


async def test_export_part_holds_the_users_records_and_images_and_nothing_of_others(
    stack: RunningStack,
) -> None:
    a, a_model = ready_owner(stack, "exporter")
    b, b_model = ready_owner(stack, "bystander")
    a_id = f"user_{a}"
    gen = finished_generation(stack, a, a_model, num_outputs=2, prompt="me in the Alps")
    favourite = gen["images"][0]["id"]
    with api(stack, a) as c:
        assert c.patch(f"/v1/images/{favourite}", json={"favourite": True}).status_code == 200
    b_gen = finished_generation(stack, b, b_model)

    export_id = uuid.uuid4()
    async with EventProbe(stack, [EXPORTED]) as probe:
        done = await probe.export(GenerationAccountExportedV1, a_id, export_id)
        assert done.user_id == a_id
        assert done.prefix == f"exports/{export_id}/generation/"
        listing = objects_under(stack, done.prefix)
        assert (done.objects, done.bytes) == (len(listing), sum(listing.values()))

        generations = json.loads(read_object(stack, f"{done.prefix}records/generations.json"))
        images = json.loads(read_object(stack, f"{done.prefix}records/images.json"))
        assert [g["id"] for g in generations] == [gen["id"]]
        record = generations[0]
        assert record["prompt"] == "me in the Alps"
        assert record["final_prompt"] == gen["final_prompt"]
        assert record["num_outputs"] == 2 and record["created_at"]
        assert not {"work", "work_after", "lease_until", "work_attempts"} & set(record)
        assert {i["id"] for i in images} == {i["id"] for i in gen["images"]}
        assert {i["id"]: i["favourite"] for i in images}[favourite] is True
        for image in images:
            assert image["file"] == f"files/images/{image['id']}.webp"
            owner = storage_owner(stack, "generation", a_id)
            original = f"images/{owner}/{gen['id']}/{image['index']}.webp"
            assert read_object(stack, done.prefix + image["file"]) == read_object(stack, original)
        assert set(listing) == {
            f"{done.prefix}records/generations.json",
            f"{done.prefix}records/images.json",
            *(done.prefix + i["file"] for i in images),
        }
        everything = json.dumps([generations, images])
        assert b not in everything and b_gen["id"] not in everything
        assert not any(i["id"] in everything for i in b_gen["images"])

        # Asked again (a new event id): written again, answered again.
        await probe.publish(ExportRequestedV1(user_id=a_id, export_id=export_id))
        both = await wait_seen(probe, lambda e: isinstance(e, GenerationAccountExportedV1), 2)
        assert (both[1].objects, both[1].bytes) == (done.objects, done.bytes)
    assert stack.admin_sql("SELECT count(*) FROM generation.exports WHERE id = %s", export_id) == [
        (0,)
    ]
