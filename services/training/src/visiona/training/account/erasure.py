"""Erasure: training's answer to ``gateway.account.erasure_requested.v1`` (one ``erasures``
row per deletion and round, written in the consumer's transaction; :class:`ErasureJobs` does
the rest).

- ``take``: the parts of the user's exports in progress are deleted from S3; then, in one
  transaction, every model of the user is handed to the model purge
  (:meth:`visiona.training.domain.model.Model.schedule_purge`: a running training is canceled
  and billing releases its hold; :meth:`visiona.training.jobs.model.ModelJobs.step_purge`
  stops the provider's training, deletes its versions and model, our dataset and weights,
  then the row), the photo and export rows are deleted, and the provider training ids are
  kept for the end.
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

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from visiona.kit.db import Database, UnitOfWork
from visiona.kit.erasure import export_prefix, forget_published_events
from visiona.kit.events import ErasureRequestedV1, TrainingAccountPurgedV1
from visiona.kit.jobs import RowJobs, Vanished
from visiona.kit.logging import get_logger
from visiona.kit.owners import find_owner_key, forget_owner, legacy_prefix
from visiona.kit.storage import Storage
from visiona.training.account._common import SERVICE, now
from visiona.training.config import TrainingSettings
from visiona.training.domain.model import Model
from visiona.training.repository import account as repo
from visiona.training.repository import model as model_repo
from visiona.training.repository import photo as photo_repo
from visiona.training.repository.account import ERASURES, ErasureRecord

log = get_logger(__name__)

# Every object the service stores is under "<top>/<owner key>/" for one of these tops
# (service.photo.upload_key and photo_key, jobs.model.dataset_key and weights_key;
# visiona.kit.owners), or, stored before owner keys and not moved yet, under "<top>/<user id>/".
OBJECT_TOPS = ("uploads", "photos", "datasets", "models")


async def user_objects(storage: Storage, user_id: str, owner: str | None) -> list[str]:
    """The keys of every object of ``user_id`` (whose owner key is ``owner``)."""
    prefixes = [f"{top}/{owner}/" for top in OBJECT_TOPS] if owner else []
    prefixes += [p for top in OBJECT_TOPS if (p := legacy_prefix(top, user_id))]
    keys: list[str] = []
    for prefix in prefixes:
        keys += [key for key, _ in await storage.list_keys(prefix)]
    return keys


def _purge_items(model: Model) -> int:
    """What the purge of ``model`` removes, as its row records it."""
    recorded = (
        model.provider_model,
        model.version,
        model.provider_running,
        model.dataset_key,
        model.weights_key,
    )
    return 1 + sum(1 for item in recorded if item)


class ErasureJobs(RowJobs[ErasureRecord]):
    rows = ERASURES
    name = "erasures"

    def __init__(
        self,
        db: Database,
        storage: Storage,
        settings: TrainingSettings,
        wake_models: Callable[[], None],
    ) -> None:
        super().__init__(db, settings.job_settings())
        self.storage = storage
        self.recheck = timedelta(seconds=settings.erasure_recheck_s)
        self.wake_models = wake_models

    async def requested(self, event: ErasureRequestedV1, uow: UnitOfWork) -> None:
        """Record the round (the consumer's transaction; the unit of work acts as the user)."""
        answered = await repo.recorded_answer(uow, event.deletion_id, event.round)
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
        await repo.add_erasure(uow, event.deletion_id, event.round, event.user_id)
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
            exports = await repo.export_ids(uow)
        # A part being written holds copies of the user's data; its row goes below.
        removed = 0
        for export_id in exports:
            removed += await self.storage.delete_prefix(export_prefix(export_id, SERVICE))
        async with self.locked(erasure) as (uow, current):
            if current.work != "take":
                return
            refs = set(current.provider_training_ids)
            for model in await model_repo.load_all(uow):
                if model.provider_training_id:
                    refs.add(model.provider_training_id)
                if model.visible:
                    removed += _purge_items(model)
                    model.schedule_purge("account_erased", now())
                    await model_repo.save(uow, model)
                else:
                    removed += 1  # deleted by the user; its purge is under way
            removed += await photo_repo.delete_all(uow)
            removed += await repo.delete_exports(uow, exports)
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
            left = await repo.left(uow, user)
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
            left = await repo.left(uow, user)
            if left.new or left.purging or left.unpublished:  # something came meanwhile
                await self.save(
                    uow,
                    current,
                    work="take" if left.new else "finish",
                    work_after=now() + (timedelta(0) if left.new else self.recheck),
                )
                await uow.commit()
                return
            webhooks = await repo.delete_webhooks(uow, current.provider_training_ids)
            await forget_published_events(uow, user)
            await forget_owner(uow, user)
            await repo.delete_erasure(uow, current.id)
            removed = current.removed + webhooks
            if not await repo.record_answer(uow, current.deletion_id, current.round, removed):
                # Answered while this run was going: say it again.
                removed = await repo.recorded_answer(uow, current.deletion_id, current.round) or 0
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
        forgotten = await repo.forget_answers(uow, older_than_s)
        await uow.commit()
    return forgotten
