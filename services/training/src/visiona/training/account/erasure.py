"""Erasure: training's answer to ``gateway.account.erasure_requested.v1`` (one ``erasures``
row per deletion and round, written in the consumer's transaction; :class:`ErasureJobs` does
the rest).

- ``take``: the parts of the user's exports in progress are deleted from S3; then, in one
  transaction, every model of the user is handed to the model purge
  (:func:`visiona.training.models.schedule_purge`: a running training is canceled and billing
  releases its hold; :meth:`visiona.training.jobs.ModelJobs.step_purge` stops the provider's
  training, deletes its versions and model, our dataset and weights, then the row), the
  photo and export rows are deleted, and the provider training ids are kept for the end.
- ``finish``: waits (``TRAINING_ERASURE_RECHECK_S``) while purges run or events naming the
  user are still unpublished, goes back to ``take`` if something new appeared (a request in
  flight when the erasure began), deletes every object under the user's prefixes, then in one
  transaction deletes the webhook records of the user's trainings, forgets the published
  events that name the user, deletes the erasure row, records the answer by deletion and round
  (``erasure_answers``, no user) and emits ``training.account.purged.v1``. From then on no
  row names the user.

``removed`` counts rows, objects and provider artifacts. A model handed to the purge counts
what the purge removes as its row records it (the row, the provider's model and version, a
running training, our dataset and weights). Objects are counted before they are deleted, so a
crash counts some twice (one more round) and never leaves a round that removed something
answering 0. Published outbox rows are not counted: they are traces of what was counted.

A request for a round already answered gets the recorded answer again; one for a round in
progress joins it. A crash anywhere leaves the row (its lease lapses, a worker resumes it),
and every phase is idempotent.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from visiona.kit.db import Database, UnitOfWork
from visiona.kit.erasure import export_prefix, forget_published_events
from visiona.kit.events import ErasureRequestedV1, TrainingAccountPurgedV1
from visiona.kit.jobs import RowJobs, Vanished
from visiona.kit.logging import get_logger
from visiona.kit.owners import find_owner_key, forget_owner, legacy_prefix
from visiona.kit.rows import RowStore
from visiona.kit.storage import Storage
from visiona.training import models
from visiona.training.account._common import SERVICE, delete_rows, job_settings, now
from visiona.training.config import TrainingSettings
from visiona.training.models import ModelRecord

log = get_logger(__name__)

# Every object the service stores is under "<top>/<owner key>/" for one of these tops
# (uploads.upload_key, uploads.photo_key, jobs.dataset_key, jobs.weights_key; visiona.kit.owners),
# or, stored before owner keys and not moved yet, under "<top>/<user id>/".
OBJECT_TOPS = ("uploads", "photos", "datasets", "models")


async def user_objects(storage: Storage, user_id: str, owner: str | None) -> list[str]:
    """The keys of every object of ``user_id`` (whose owner key is ``owner``)."""
    prefixes = [f"{top}/{owner}/" for top in OBJECT_TOPS] if owner else []
    prefixes += [p for top in OBJECT_TOPS if (p := legacy_prefix(top, user_id))]
    keys: list[str] = []
    for prefix in prefixes:
        keys += [key for key, _ in await storage.list_keys(prefix)]
    return keys


def _purge_items(model: ModelRecord) -> int:
    """What the purge of ``model`` removes, as its row records it."""
    recorded = (
        model.provider_model,
        model.version,
        model.provider_running,
        model.dataset_key,
        model.weights_key,
    )
    return 1 + sum(1 for item in recorded if item)


@dataclass
class ErasureRecord:
    id: uuid.UUID
    deletion_id: uuid.UUID
    round: int
    user_id: str
    removed: int
    provider_training_ids: list[str]
    requested_at: datetime
    updated_at: datetime
    work: str | None
    work_after: datetime | None
    work_attempts: int
    lease_until: datetime | None


ERASURES = RowStore("erasures", ErasureRecord)


@dataclass(frozen=True)
class _Left:
    """What of the user is still here (the unit of work's user)."""

    models: int
    purging: int
    photos: int
    exports: int
    unpublished: int

    @property
    def new(self) -> bool:
        """Something appeared that ``take`` has not handled."""
        return bool(self.models or self.photos or self.exports)


async def _left(uow: UnitOfWork, user_id: str) -> _Left:
    row = (
        await uow.session.execute(
            sa.text(
                "SELECT (SELECT count(*) FROM models WHERE deleted_at IS NULL) AS models, "
                "(SELECT count(*) FROM models WHERE deleted_at IS NOT NULL) AS purging, "
                "(SELECT count(*) FROM photos) AS photos, "
                "(SELECT count(*) FROM exports) AS exports, "
                "(SELECT count(*) FROM outbox WHERE published_at IS NULL "
                "AND payload->>'user_id' = :user) AS unpublished"
            ),
            {"user": user_id},
        )
    ).one()
    return _Left(row.models, row.purging, row.photos, row.exports, row.unpublished)


async def _recorded_answer(uow: UnitOfWork, deletion_id: uuid.UUID, round_: int) -> int | None:
    found = await uow.session.execute(
        sa.text("SELECT removed FROM erasure_answers WHERE deletion_id = :d AND round = :r"),
        {"d": deletion_id, "r": round_},
    )
    value = found.scalar()
    return None if value is None else int(value)


class ErasureJobs(RowJobs[ErasureRecord]):
    table = "erasures"
    name = "erasures"

    def __init__(
        self,
        db: Database,
        storage: Storage,
        settings: TrainingSettings,
        wake_models: Callable[[], None],
    ) -> None:
        super().__init__(db, job_settings(settings))
        self.storage = storage
        self.recheck = timedelta(seconds=settings.erasure_recheck_s)
        self.wake_models = wake_models

    async def load(self, uow: UnitOfWork, row_id: uuid.UUID, *, lock: bool) -> ErasureRecord | None:
        return await ERASURES.load(uow, row_id, lock=lock)

    async def save(self, uow: UnitOfWork, row: ErasureRecord, **changes: Any) -> None:
        await ERASURES.save(uow, row, **changes)

    async def requested(self, event: ErasureRequestedV1, uow: UnitOfWork) -> None:
        """Record the round (the consumer's transaction; the unit of work acts as the user)."""
        answered = await _recorded_answer(uow, event.deletion_id, event.round)
        if answered is not None:
            uow.emit(
                TrainingAccountPurgedV1(
                    deletion_id=event.deletion_id, round=event.round, removed=answered
                )
            )
            log.info(
                "training.erasure_answered_again",
                deletion_id=str(event.deletion_id),
                round=event.round,
            )
            return
        # A repeated request for a round in progress joins it (and cuts a backoff short).
        await uow.session.execute(
            sa.text(
                "INSERT INTO erasures (id, deletion_id, round, user_id, work, work_after) "
                "VALUES (:id, :deletion, :round, :user, 'take', now()) "
                "ON CONFLICT (deletion_id, round) DO UPDATE SET work_after = now() "
                "WHERE erasures.work IS NOT NULL"
            ),
            {
                "id": uuid.uuid4(),
                "deletion": event.deletion_id,
                "round": event.round,
                "user": event.user_id,
            },
        )
        uow.after_commit(self.wake)
        log.info(
            "training.erasure_requested", deletion_id=str(event.deletion_id), round=event.round
        )

    async def _again(self, erasure: ErasureRecord, work: str, after: timedelta) -> None:
        async with self.locked(erasure) as (uow, current):
            changes: dict[str, Any] = {"work": work, "work_after": now() + after}
            if current.work != work:
                changes["work_attempts"] = 0
            await self.save(uow, current, **changes)
            await uow.commit()

    async def step_take(self, erasure: ErasureRecord) -> None:
        user = erasure.user_id
        async with self.db.uow(user) as uow:
            exports = list(
                (await uow.session.execute(sa.text("SELECT export_id FROM exports"))).scalars()
            )
        # A part being written holds copies of the user's data; its row goes below.
        removed = 0
        for export_id in exports:
            removed += await self.storage.delete_prefix(export_prefix(export_id, SERVICE))
        async with self.locked(erasure) as (uow, current):
            if current.work != "take":
                return
            refs = set(current.provider_training_ids)
            rows = await uow.session.execute(sa.text(f"{models.SELECT} FOR UPDATE"))
            for model in [models.record(r) for r in rows]:
                if model.provider_training_id:
                    refs.add(model.provider_training_id)
                if model.deleted_at is None:
                    removed += _purge_items(model)
                    await models.schedule_purge(uow, model, "account_erased")
                else:
                    removed += 1  # deleted by the user; its purge is under way
            removed += await delete_rows(uow, "DELETE FROM photos")
            removed += await delete_rows(
                uow, "DELETE FROM exports WHERE export_id = ANY(:ids)", ids=exports
            )
            await self.save(
                uow,
                current,
                removed=current.removed + removed,
                provider_training_ids=sorted(refs),
                work="finish",
                work_after=now(),
                work_attempts=0,
            )
            uow.after_commit(self.wake_models)
            uow.after_commit(self.wake)
            await uow.commit()
        log.info(
            "training.erasure_taken",
            deletion_id=str(erasure.deletion_id),
            round=erasure.round,
            removed=removed,
        )

    async def step_finish(self, erasure: ErasureRecord) -> None:
        user = erasure.user_id
        async with self.db.uow(user) as uow:
            left = await _left(uow, user)
        if left.new:
            await self._again(erasure, "take", timedelta(0))
            return
        if left.purging or left.unpublished:
            await self._again(erasure, "finish", self.recheck)
            return
        async with self.db.uow(user) as uow:
            owner = await find_owner_key(uow, user)
        keys = await user_objects(self.storage, user, owner)
        if keys:
            async with self.locked(erasure) as (uow, current):
                await self.save(uow, current, removed=current.removed + len(keys))
                await uow.commit()
            for key in keys:
                await self.storage.delete(key)
        async with self.locked(erasure) as (uow, current):
            if current.work != "finish":
                return
            left = await _left(uow, user)
            if left.new or left.purging or left.unpublished:  # something came meanwhile
                await self.save(
                    uow,
                    current,
                    work="take" if left.new else "finish",
                    work_after=now() + (timedelta(0) if left.new else self.recheck),
                )
                await uow.commit()
                return
            webhooks = await delete_rows(
                uow,
                "DELETE FROM replicate_webhooks WHERE provider_id = ANY(:ids)",
                ids=current.provider_training_ids,
            )
            await forget_published_events(uow, user)
            await forget_owner(uow, user)
            await delete_rows(uow, "DELETE FROM erasures WHERE id = :id", id=current.id)
            removed = current.removed + webhooks
            recorded = await uow.session.execute(
                sa.text(
                    "INSERT INTO erasure_answers (deletion_id, round, removed) "
                    "VALUES (:d, :r, :n) ON CONFLICT DO NOTHING RETURNING removed"
                ),
                {"d": current.deletion_id, "r": current.round, "n": removed},
            )
            if recorded.first() is None:  # answered while this run was going: say it again
                removed = await _recorded_answer(uow, current.deletion_id, current.round) or 0
            uow.emit(
                TrainingAccountPurgedV1(
                    deletion_id=current.deletion_id, round=current.round, removed=removed
                )
            )
            await uow.commit()
        log.info(
            "training.account_purged",
            deletion_id=str(erasure.deletion_id),
            round=erasure.round,
            removed=removed,
        )
        raise Vanished()


async def forget_old_answers(db: Database, older_than_s: float) -> int:
    """Answers to erasure rounds are kept for repeated requests, then dropped."""
    async with db.uow() as uow:
        forgotten = await delete_rows(
            uow,
            "DELETE FROM erasure_answers WHERE answered_at < now() - make_interval(secs => :s)",
            s=older_than_s,
        )
        await uow.commit()
    return forgotten
