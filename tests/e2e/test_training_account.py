"""Training's part in the user's erasure and export sagas: events published on the stack's
exchange as the gateway would, answers awaited on it, and the database (as a superuser), the
bucket and the Replicate emulator inspected for what is left."""

from __future__ import annotations

import io
import json
import tarfile
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.saga_helpers import EventProbe, purged_by
from tests.e2e.test_billing import checkout, pay, plans, wait_balance
from tests.e2e.test_training import (
    funded_user,
    model_row,
    new_user,
)
from tests.e2e.training_helpers import (
    TERMINAL,
    accepted_photo_ids,
    api,
    create_model,
    emulator,
    get_model,
    objects_under,
    read_object,
    replicate_get,
    storage,
    storage_owner,
    trained_model,
    wait_model,
)
from tests.support.rows import rows_naming
from tests.support.stack import RunningStack
from tests.support.waiting import wait_for
from visiona.kit.events import (
    ErasureRequestedV1,
    Event,
    ExportRequestedV1,
    TrainingAccountExportedV1,
    TrainingAccountPurgedV1,
)

PURGED = TrainingAccountPurgedV1.routing_key
EXPORTED = TrainingAccountExportedV1.routing_key
CREATOR_CREDITS = 600


def uid(user: str) -> str:
    """The user id services see for a dev token's user."""
    return f"user_{user}"


def creator_user(stack: RunningStack, prefix: str) -> str:
    """A user on the Creator plan: 600 credits, up to 5 models."""
    user = new_user(prefix)
    pay(checkout(stack, user, "plan", "creator"))
    wait_balance(stack, user, CREATOR_CREDITS)
    wait_for(
        "the plan to be active",
        lambda: plans(stack, user)["current"],
        lambda c: c["plan_id"] == "creator" and c["status"] == "active",
    )
    return user


def bucket_keys(stack: RunningStack) -> list[str]:
    s = storage(stack)
    return [str(o.object_name) for o in s.client.list_objects(s.bucket, recursive=True)]


def provider_trainings(stack: RunningStack, destinations: set[str]) -> list[dict[str, Any]]:
    trainings = replicate_get(stack, "/v1/trainings").json()["results"]
    return [t for t in trainings if t["destination"] in destinations]


def photo_ids_of(stack: RunningStack, user: str) -> set[str]:
    with api(stack, user) as c:
        return {p["id"] for p in c.get("/v1/photos", params={"limit": 100}).json()["photos"]}


def is_purged(deletion_id: uuid.UUID, round_: int) -> Callable[[Event], bool]:
    return purged_by(TrainingAccountPurgedV1, deletion_id, round_)


def answers(probe: EventProbe, deletion_id: uuid.UUID, round_: int) -> list[int]:
    check = is_purged(deletion_id, round_)
    return [e.removed for e in probe.seen if check(e)]  # type: ignore[attr-defined]


# --- erasure --------------------------------------------------------------------------------


@pytest.mark.timeout(300)
async def test_erasure_removes_every_row_object_and_provider_artifact_of_the_user(
    stack: RunningStack,
) -> None:
    erased = creator_user(stack, "erased")
    kept = funded_user(stack, "kept")
    kept_model = trained_model(stack, kept)
    kept_row = model_row(stack, kept_model["id"])
    kept_photos = photo_ids_of(stack, kept)

    ready = trained_model(stack, erased)
    spare = accepted_photo_ids(stack, erased, 1, first=10)
    emulator(stack, "config", {"training_duration_s": 120})
    running = create_model(stack, erased, [*sorted(photo_ids_of(stack, erased) - set(spare))])
    assert running.status_code == 202, running.text
    wait_model(stack, erased, running.json()["id"], lambda m: m["status"] == "training")
    rows = [model_row(stack, ready["id"]), model_row(stack, running.json()["id"])]
    destinations = {str(r["provider_model"]) for r in rows}
    provider_ids = [str(r["provider_training_id"]) for r in rows]
    assert all(replicate_get(stack, f"/v1/models/{d}").status_code == 200 for d in destinations)
    user_id = uid(erased)
    owner = storage_owner(stack, "training", user_id)
    assert any(owner in key for key in bucket_keys(stack))
    assert not any(user_id in key for key in bucket_keys(stack))  # keys name no user
    assert rows_naming(stack.admin_sql, "training", user_id)

    deletion = uuid.uuid4()
    async with EventProbe(stack, [PURGED]) as probe:
        await probe.publish(ErasureRequestedV1(user_id=user_id, deletion_id=deletion, round=1))
        first = await probe.wait_for(is_purged(deletion, 1), timeout_s=90)
        assert isinstance(first, TrainingAccountPurgedV1)
        assert first.removed > 0 and first.user_id is None

        # Nothing of the user is left: rows, published events, objects, the provider's side.
        assert rows_naming(stack.admin_sql, "training", user_id) == {}
        webhooks = stack.admin_sql(
            "SELECT count(*) FROM training.replicate_webhooks WHERE provider_id = ANY(%s)",
            provider_ids,
        )
        assert webhooks == [(0,)]
        assert [k for k in bucket_keys(stack) if user_id in k or owner in k] == []
        for destination in destinations:
            assert replicate_get(stack, f"/v1/models/{destination}").status_code == 404
        trainings = provider_trainings(stack, destinations)
        assert len(trainings) == 2 and all(t["status"] in TERMINAL for t in trainings)
        assert {t["id"]: t["status"] for t in trainings}[provider_ids[1]] == "canceled"
        with api(stack, erased) as c:
            assert c.get("/v1/models").json()["models"] == []
            assert c.get("/v1/photos").json()["photos"] == []

        # Another user's data is untouched.
        assert get_model(stack, kept, kept_model["id"])["status"] == "succeeded"
        assert photo_ids_of(stack, kept) == kept_photos
        assert replicate_get(stack, f"/v1/models/{kept_row['provider_model']}").status_code == 200
        kept_owner = storage_owner(stack, "training", uid(kept))
        kept_keys = [k for k in bucket_keys(stack) if kept_owner in k]
        assert str(kept_row["weights_key"]) in kept_keys
        assert len([k for k in kept_keys if k.startswith("photos/")]) == len(kept_photos)

        # The next round finds nothing; a repeated request for round 1 is answered again.
        await probe.publish(ErasureRequestedV1(user_id=user_id, deletion_id=deletion, round=2))
        second = await probe.wait_for(is_purged(deletion, 2), timeout_s=60)
        assert isinstance(second, TrainingAccountPurgedV1) and second.removed == 0
        await probe.publish(ErasureRequestedV1(user_id=user_id, deletion_id=deletion, round=1))
        await probe.wait_for(lambda e: len(answers(probe, deletion, 1)) == 2, timeout_s=60)
        assert answers(probe, deletion, 1) == [first.removed, first.removed]
    assert rows_naming(stack.admin_sql, "training", user_id) == {}


@pytest.mark.timeout(300)
@pytest.mark.disruptive
async def test_an_erasure_survives_the_service_being_killed_in_the_middle(
    stack: RunningStack,
) -> None:
    user = funded_user(stack, "killed")
    model = trained_model(stack, user)
    destination = str(model_row(stack, model["id"])["provider_model"])
    photo_ids = sorted(photo_ids_of(stack, user))
    user_id = uid(user)
    owner = storage_owner(stack, "training", user_id)
    deletion = uuid.uuid4()
    # Every provider call takes 1.5 s: the purge is still talking to the provider when killed.
    emulator(stack, "config", {"answer_delay_ms": 1500})
    try:
        async with EventProbe(stack, [PURGED]) as probe:
            await probe.publish(ErasureRequestedV1(user_id=user_id, deletion_id=deletion, round=1))
            wait_for(
                "the model handed to the purge",
                lambda: stack.admin_sql(
                    "SELECT deleted_at IS NOT NULL FROM training.models WHERE id = %s",
                    uuid.UUID(model["id"]),
                ),
                lambda r: r == [(True,)],
            )
            # Nothing new for a user whose erasure is running.
            refused = create_model(stack, user, photo_ids)
            assert (refused.status_code, refused.json()["code"]) == (409, "account_erasing")
            with api(stack, user) as c:
                uploads = c.post(
                    "/v1/photos/uploads", json={"photos": [{"content_type": "image/jpeg"}]}
                )
            assert (uploads.status_code, uploads.json()["code"]) == (409, "account_erasing")
            stack.processes.kill("training")
            emulator(stack, "config", {"answer_delay_ms": 0})
            assert stack.admin_sql(
                "SELECT round, work FROM training.erasures WHERE deletion_id = %s", deletion
            ) in ([(1, "take")], [(1, "finish")])
            stack.processes.start("training")
            stack.processes.wait_ready()
            purged = await probe.wait_for(is_purged(deletion, 1), timeout_s=90)
            assert isinstance(purged, TrainingAccountPurgedV1) and purged.removed > 0
    finally:
        emulator(stack, "config", {"answer_delay_ms": 0})
    assert rows_naming(stack.admin_sql, "training", user_id) == {}
    assert [k for k in bucket_keys(stack) if user_id in k or owner in k] == []
    assert replicate_get(stack, f"/v1/models/{destination}").status_code == 404


# --- export ---------------------------------------------------------------------------------


@pytest.mark.timeout(300)
async def test_export_writes_the_users_records_and_files_and_nobody_elses(
    stack: RunningStack,
) -> None:
    user = funded_user(stack, "exporter")
    other = funded_user(stack, "bystander")
    model = trained_model(stack, user)
    theirs = trained_model(stack, other)
    photos = photo_ids_of(stack, user)
    weights_key = str(model_row(stack, model["id"])["weights_key"])
    export_id = uuid.uuid4()
    s = storage(stack)

    async with EventProbe(stack, [EXPORTED]) as probe:
        done = await probe.export(TrainingAccountExportedV1, uid(user), export_id)
        prefix = f"exports/{export_id}/training/"
        assert done.user_id == uid(user) and done.prefix == prefix
        listed = {key[len(prefix) :]: size for key, size in objects_under(stack, prefix).items()}
        assert (done.objects, done.bytes) == (len(listed), sum(listed.values()))
        expected = {f"files/photos/{p}.jpg" for p in photos}
        expected |= {f"files/models/{model['id']}/weights.tar", "records/photos.json"}
        expected |= {"records/models.json"}
        assert set(listed) == expected

        def read(name: str) -> bytes:
            return read_object(stack, prefix + name)

        photo_records = json.loads(read("records/photos.json"))
        assert {p["id"] for p in photo_records} == photos
        assert {p["user_id"] for p in photo_records} == {uid(user)}
        assert all(p["file"] == f"files/photos/{p['id']}.jpg" for p in photo_records)
        assert not {"upload_key", "object_key"} & set(photo_records[0])
        model_records = json.loads(read("records/models.json"))
        assert [m["id"] for m in model_records] == [model["id"]]
        (exported_model,) = model_records
        assert exported_model["status"] == "succeeded" and exported_model["name"] == "Me"
        assert exported_model["weights_file"] == f"files/models/{model['id']}/weights.tar"
        assert not {"lease_until", "work", "weights_url", "weights_key"} & set(exported_model)
        assert read(f"files/models/{model['id']}/weights.tar") == bytes(
            s.client.get_object(s.bucket, weights_key).read()
        )
        with tarfile.open(fileobj=io.BytesIO(read(exported_model["weights_file"]))) as tar:
            assert "lora.safetensors" in tar.getnames()
        everything = b"".join(read(name) for name in listed if name.startswith("records/"))
        assert uid(other).encode() not in everything
        assert theirs["id"].encode() not in everything

        # Asked again (a new event id): written again, answered again, the same.
        await probe.publish(ExportRequestedV1(user_id=uid(user), export_id=export_id))
        await probe.wait_for(
            lambda e: (
                sum(
                    isinstance(x, TrainingAccountExportedV1) and x.export_id == export_id
                    for x in probe.seen
                )
                == 2
            ),
            timeout_s=60,
        )
        again = [
            e
            for e in probe.seen
            if isinstance(e, TrainingAccountExportedV1) and e.export_id == export_id
        ][-1]
        assert (again.objects, again.bytes) == (done.objects, done.bytes)
    assert stack.admin_sql(
        "SELECT count(*) FROM training.exports WHERE export_id = %s", export_id
    ) == [(0,)]
