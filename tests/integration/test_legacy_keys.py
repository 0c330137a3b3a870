"""Objects stored under the user id before owner keys are moved to the user's opaque owner key
(visiona.kit.owners): the migration gives each user with rows a ``legacy`` owner, and the job
copies each object, points its row at the copy and removes the old one, resuming after a crash
at any point. Each service's own schema, migrated to just before owner keys, filled with
old-shaped rows and objects, then migrated to head; a real S3 (SeaweedFS)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

import pytest
from alembic import command

from tests.support.infra import Infra
from tests.support.schemas import SERVICES_DIR, SchemaDb, fresh_schema
from visiona.generation.jobs.legacy_keys import TOPS as GENERATION_TOPS
from visiona.generation.jobs.legacy_keys import GenerationLegacyKeys
from visiona.kit import migrations
from visiona.kit.db import Database
from visiona.kit.owners import LegacyKeys
from visiona.kit.storage import Storage
from visiona.training.jobs.legacy_keys import TOPS as TRAINING_TOPS
from visiona.training.jobs.legacy_keys import TrainingLegacyKeys

BEFORE_OWNER_KEYS = "0006"


def downgraded(infra: Infra, run_id: str, service: str) -> Iterator[SchemaDb]:
    """``service``'s schema as it was before owner keys."""
    with fresh_schema(infra, run_id, service) as schema:
        config = migrations.alembic_config(
            SERVICES_DIR / service / "migrations", schema.migrator_url, schema.schema
        )
        command.downgrade(config, BEFORE_OWNER_KEYS)
        yield schema


def to_head(schema: SchemaDb, service: str) -> None:
    migrations.upgrade(SERVICES_DIR / service / "migrations", schema.migrator_url, schema.schema)


@pytest.fixture
def training(infra: Infra, run_id: str) -> Iterator[SchemaDb]:
    yield from downgraded(infra, run_id, "training")


@pytest.fixture
def generation(infra: Infra, run_id: str) -> Iterator[SchemaDb]:
    yield from downgraded(infra, run_id, "generation")


LegacyJob = Callable[[SchemaDb, Sequence[str], Callable[[Database, Storage], Any]], LegacyKeys]


@pytest.fixture
async def legacy_job(storage: Storage) -> AsyncIterator[LegacyJob]:
    """Makes the kit's move job for a schema, its top folders and the service's row mover,
    as the service wires it (batches of 10 here); their databases disposed of afterwards."""
    opened: list[Database] = []

    def make(
        schema: SchemaDb, tops: Sequence[str], mover: Callable[[Database, Storage], Any]
    ) -> LegacyKeys:
        db = schema.db()
        opened.append(db)
        return LegacyKeys(db, storage, tops=tops, move_rows=mover(db, storage).move_rows, batch=10)

    yield make
    for db in opened:
        await db.dispose()


async def put(storage: Storage, key: str) -> bytes:
    body = f"bytes of {key}".encode()
    await storage.put_bytes(key, body, content_type="application/octet-stream")
    return body


async def read(storage: Storage, key: str) -> bytes:
    return b"".join([chunk async for chunk in storage.get_stream(key)])


async def bucket_keys(storage: Storage) -> list[str]:
    return [key for key, _ in await storage.list_keys("")]


async def test_training_objects_move_to_the_owner_key_with_their_rows(
    training: SchemaDb, storage: Storage, legacy_job: LegacyJob
) -> None:
    user, bystander = f"user_{uuid.uuid4().hex[:12]}", f"user_{uuid.uuid4().hex[:12]}"
    fresh, half_moved, model = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    old = {
        "photo": f"photos/{user}/{fresh}.jpg",
        "half": f"photos/{user}/{half_moved}.jpg",
        "dataset": f"datasets/{user}/{model}.zip",
        "weights": f"models/{user}/{model}/weights.tar",
    }
    bodies = {name: await put(storage, key) for name, key in old.items()}
    theirs = f"photos/{bystander}/{uuid.uuid4()}.jpg"
    await put(storage, theirs)
    for photo_id, key in ((fresh, old["photo"]), (half_moved, old["half"])):
        training.sql(
            "INSERT INTO photos (id, user_id, status, declared_type, upload_key, "
            "upload_expires_at, object_key) "
            "VALUES (%s, %s, 'accepted', 'image/jpeg', %s, now(), %s)",
            photo_id,
            user,
            f"uploads/{user}/{photo_id}",
            key,
        )
    training.sql(
        "INSERT INTO models (id, user_id, name, status, preset, trigger_word, training_id, "
        "photo_ids, dataset_key, weights_key) VALUES (%s, %s, 'Me', 'succeeded', 'fast', "
        "'TOK', %s, %s, %s, %s)",
        model,
        user,
        uuid.uuid4(),
        [fresh],
        old["dataset"],
        old["weights"],
    )

    to_head(training, "training")
    ((owner, legacy),) = training.sql(
        "SELECT key, legacy FROM storage_owners WHERE user_id = %s", user
    )
    assert legacy and len(owner) == 32 and user not in owner
    # A run that crashed after recording one photo's move, before deleting its old object.
    moved_half = f"photos/{owner}/{half_moved}.jpg"
    await storage.copy(old["half"], moved_half)
    training.sql("UPDATE photos SET object_key = %s WHERE id = %s", moved_half, half_moved)

    job = legacy_job(training, TRAINING_TOPS, TrainingLegacyKeys)
    assert await job.run_once() == 1

    photos = dict(training.sql("SELECT id, object_key FROM photos"))
    assert photos == {fresh: f"photos/{owner}/{fresh}.jpg", half_moved: moved_half}
    assert await read(storage, photos[fresh]) == bodies["photo"]
    assert await read(storage, moved_half) == bodies["half"]
    ((dataset, weights, upload),) = training.sql(
        "SELECT m.dataset_key, m.weights_key, p.upload_key FROM models m, photos p WHERE p.id = %s",
        fresh,
    )
    assert (dataset, weights) == (
        f"datasets/{owner}/{model}.zip",
        f"models/{owner}/{model}/weights.tar",
    )
    assert await read(storage, dataset) == bodies["dataset"]
    assert await read(storage, weights) == bodies["weights"]
    assert upload == f"uploads/{owner}/{fresh}"
    assert [k for k in await bucket_keys(storage) if user in k] == []
    assert theirs in await bucket_keys(storage)  # no row of this user names it: untouched
    assert training.sql("SELECT legacy FROM storage_owners WHERE user_id = %s", user) == [(False,)]
    assert await job.run_once() == 0  # idempotent: nothing left to do


async def test_generation_images_move_to_the_owner_key_with_their_rows(
    generation: SchemaDb, storage: Storage, legacy_job: LegacyJob
) -> None:
    user = f"user_{uuid.uuid4().hex[:12]}"
    finished, running = uuid.uuid4(), uuid.uuid4()
    keys = {}
    for gen_id, done in ((finished, True), (running, False)):
        generation.sql(
            "INSERT INTO generations (id, user_id, model_id, version, prompt, final_prompt, "
            "num_outputs, aspect_ratio, lora_scale, output_format, status, finished_at) "
            "VALUES (%s, %s, %s, 'v', 'me', 'me', 1, '1:1', 1, 'webp', %s, "
            "CASE WHEN %s THEN now() END)",
            gen_id,
            user,
            uuid.uuid4(),
            "succeeded" if done else "running",
            done,
        )
        image, thumb = f"images/{user}/{gen_id}/0.webp", f"images/{user}/{gen_id}/0.thumb.webp"
        keys[gen_id] = (image, thumb, await put(storage, image), await put(storage, thumb))
        generation.sql(
            "INSERT INTO images (id, user_id, generation_id, model_id, idx, object_key, "
            "thumbnail_key, content_type, width, height, size_bytes, blurhash) "
            "VALUES (%s, %s, %s, %s, 0, %s, %s, 'image/webp', 1, 1, 1, 'x')",
            uuid.uuid4(),
            user,
            gen_id,
            uuid.uuid4(),
            image,
            thumb,
        )

    to_head(generation, "generation")
    ((owner,),) = generation.sql("SELECT key FROM storage_owners WHERE user_id = %s", user)
    job = legacy_job(generation, GENERATION_TOPS, GenerationLegacyKeys)

    # A generation still running keeps its keys (its ingest may be storing): not done yet.
    assert await job.run_once() == 0
    rows = dict(generation.sql("SELECT generation_id, object_key FROM images"))
    assert rows[finished] == f"images/{owner}/{finished}/0.webp"
    assert rows[running] == keys[running][0]
    image, thumb, image_body, thumb_body = keys[finished]
    assert await read(storage, rows[finished]) == image_body
    assert await read(storage, f"images/{owner}/{finished}/0.thumb.webp") == thumb_body
    assert not await storage.exists(image) and not await storage.exists(thumb)

    generation.sql("UPDATE generations SET finished_at = now() WHERE id = %s", running)
    assert await job.run_once() == 1
    assert [k for k in await bucket_keys(storage) if user in k] == []
    assert generation.sql("SELECT legacy FROM storage_owners") == [(False,)]
