"""Erasure of a user's generations, images and predictions (the ``erasures`` rows' ``purge``
step); see :mod:`visiona.generation.account` for how a request becomes a row.

One ``purge`` step, resumable at any point:

1. every generation of the user is ended (``canceled``, reason ``account_erased``) and its job
   cleared, as are the user's unfinished exports, so that no launch, poll, ingest or export
   starts again. No outcome event goes out: billing erases the user's holds in the same saga,
   and an event naming the user would only have to be forgotten again;
2. the step waits until no job step still runs on them (their leases have lapsed), so that an
   ingest cannot store an image after the objects are gone;
3. every prediction that may still be running is canceled at Replicate, with the generation
   jobs' own cancel step;
4. the S3 objects go: ``images/<owner key>/`` (and ``images/<user>/`` if not moved yet) (every image and its thumbnail, see
   :func:`visiona.generation.domain.image.image_key_base`) and the parts of unfinished exports;
5. one transaction deletes the webhook records of the user's predictions, the images,
   generations and exports rows, forgets the user's published outbox rows (waiting while one
   is still unpublished, so none outlives the answer), emits ``GenerationAccountPurgedV1``
   (rows, objects and provider cancels of the round, naming no user) and deletes the erasure
   row.

Replicate has no API to delete a prediction: canceling is all we can do there. A canceled or
finished prediction's output files are deleted by Replicate an hour after it ran (PROVIDERS.md);
the prediction itself (with its prompt) stays in the account's prediction list under
Replicate's own retention, out of our reach.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from visiona.generation.account.export import SERVICE
from visiona.generation.domain.image import owner_images_prefix
from visiona.generation.jobs.generation import GenerationJobs
from visiona.generation.repository import account as requests
from visiona.generation.repository import generation as generations
from visiona.generation.repository.account import ERASURES, ErasureRecord
from visiona.kit.db import Database
from visiona.kit.erasure import export_prefix, forget_published_events, unpublished_events
from visiona.kit.events import GenerationAccountPurgedV1
from visiona.kit.jobs import JobSettings, RowJobs
from visiona.kit.logging import get_logger
from visiona.kit.owners import find_owner_key, forget_owner, legacy_prefix
from visiona.kit.replicate import ProviderError
from visiona.kit.storage import Storage

log = get_logger(__name__)

ERASED = "account_erased"
# How soon a purge waiting on running job steps or on the relay looks again.
RECHECK_S = 0.5


class ErasureJobs(RowJobs[ErasureRecord]):
    rows = ERASURES
    name = "erasure"

    def __init__(
        self,
        db: Database,
        storage: Storage,
        generations: GenerationJobs,
        settings: JobSettings,
    ) -> None:
        super().__init__(db, settings)
        self.storage = storage
        self.generations = generations

    async def step_purge(self, erasure: ErasureRecord) -> None:
        await self._stop_work(erasure.user_id)
        async with self.db.uow(erasure.user_id) as uow:
            busy = await requests.busy(uow)
        if busy:
            await self._later(erasure)
            return
        await self._cancel_predictions(erasure)
        await self._delete_objects(erasure)
        await self._answer(erasure)

    # -- the phases ------------------------------------------------------------------------------

    def _provider_patience_spent(self, erasure: ErasureRecord) -> bool:
        """A provider down for every attempt of the step no longer holds the erasure back:
        its prediction ends by itself and its files expire."""
        return erasure.work_attempts >= self.max_attempts("purge")

    async def _stop_work(self, user_id: str) -> None:
        async with self.db.uow(user_id) as uow:
            await requests.stop_all_work(uow, ERASED)
            await uow.commit()

    async def _later(self, erasure: ErasureRecord, after_s: float = RECHECK_S) -> None:
        async with self.locked(erasure) as (uow, current):
            await self.save(uow, current, work_after=datetime.now(UTC) + timedelta(seconds=after_s))
            await uow.commit()

    async def _cancel_predictions(self, erasure: ErasureRecord) -> None:
        async with self.db.uow(erasure.user_id) as uow:
            running = await generations.at_provider(uow, lock=False)
        for gen in running:
            try:
                canceled = await self.generations.cancel_at_provider(gen)
            except ProviderError as exc:
                if not (exc.permanent or self._provider_patience_spent(erasure)):
                    raise
                log.warning(
                    "erasure.prediction_not_canceled",
                    erasure_id=str(erasure.id),
                    generation_id=str(gen.id),
                    error=str(exc),
                )
                canceled = False
            async with self.db.uow(erasure.user_id) as uow:
                # Also when the provider could not be told: nothing more can be done there.
                await requests.prediction_canceled(uow, gen.id)
                await requests.add_removed(uow, erasure.id, int(canceled))
                await uow.commit()

    async def _delete_objects(self, erasure: ErasureRecord) -> None:
        user_id = erasure.user_id
        async with self.db.uow(user_id) as uow:
            exports = await requests.export_ids(uow)
            owner = await find_owner_key(uow, user_id)
        prefixes = [export_prefix(export_id, SERVICE) for export_id in exports]
        if owner is not None:
            prefixes.append(owner_images_prefix(owner))
        # Images stored before owner keys and not moved yet.
        prefixes += [p for p in [legacy_prefix("images", user_id)] if p]
        removed = 0
        for prefix in prefixes:
            removed += await self.storage.delete_prefix(prefix)
        if removed:
            async with self.db.uow(user_id) as uow:
                await requests.add_removed(uow, erasure.id, removed)
                await uow.commit()

    async def _answer(self, erasure: ErasureRecord) -> None:
        async with self.locked(erasure) as (uow, current):
            # Locks the generations too: no webhook or saga handler changes them meanwhile.
            running = await generations.at_provider(uow, lock=True)
            if (running and not self._provider_patience_spent(current)) or await requests.busy(uow):
                # A late webhook said a prediction runs again (or a job was scheduled): the
                # next pass stops and cancels it.
                await self.save(uow, current, work_after=datetime.now(UTC))
                await uow.commit()
                return
            unpublished = await unpublished_events(uow, current.user_id)
            if unpublished:
                # An event naming the user is still on its way: forget it once it is out.
                await self.save(
                    uow, current, work_after=datetime.now(UTC) + timedelta(seconds=RECHECK_S)
                )
                await uow.commit()
                return
            removed = await requests.delete_user_rows(uow)
            removed += await forget_published_events(uow, current.user_id)
            await forget_owner(uow, current.user_id)
            total = current.removed + removed
            uow.emit(
                GenerationAccountPurgedV1(
                    deletion_id=current.deletion_id, round=current.round, removed=total
                )
            )
            await requests.delete_request(uow, "erasures", current.id)
            await uow.commit()
        log.info(
            "erasure.answered",
            erasure_id=str(erasure.id),
            deletion_id=str(erasure.deletion_id),
            round=erasure.round,
            removed=total,
        )
