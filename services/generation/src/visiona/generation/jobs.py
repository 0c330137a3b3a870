"""Background work on generations (kit :class:`~visiona.kit.jobs.RowJobs`): launch the
prediction, poll a quiet one (lost webhooks), ingest the outputs, cancel at the provider.

- ``launch`` (after billing held the credits): the attempt is recorded before the
  non-idempotent create; a lost answer is found again among the provider's newest predictions
  (same version and prompt, created after the attempt) instead of starting a second one.
- ``ingest``: every output is copied into our storage at once (provider URLs expire after an
  hour). Outputs that fail are retried with backoff; after ``ingest_max_attempts`` the
  generation ends with what was stored: billing captures the delivered images and releases
  the rest, and a generation with none stored fails and releases everything.
- ``ask_credits`` (while the generation awaits billing's answer): billing's hold is asked for
  again every ``credits_ask_again_s``, as a new event for the same generation, in case the
  request or the answer was lost (a dead-lettered event waits for an operator's redrive).
  Billing's answer replaces the step (``launch``, or the generation fails).
- A step whose generation ended or was erased meanwhile (:mod:`visiona.generation.account`)
  leaves nothing behind: a launch cancels the prediction it had just started, an ingest deletes
  the objects it copied but could not record.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa

from visiona.generation.config import GenerationSettings
from visiona.generation.domain import GenerationStatus, image_key_base, version_id
from visiona.generation.generations import (
    GenerationRecord,
    apply_provider,
    credits_requested,
    fail,
    finish,
    load,
    save,
)
from visiona.generation.images import OutputGone, OutputInvalid, StoredImage, copy_output
from visiona.generation.replicate_api import PredictionsPort
from visiona.kit.db import Database, UnitOfWork
from visiona.kit.events import ModelVersionMissingV1
from visiona.kit.jobs import JobSettings, RowJobs, Vanished
from visiona.kit.logging import get_logger
from visiona.kit.owners import owner_key_of
from visiona.kit.replicate import ProviderError
from visiona.kit.storage import Storage

log = get_logger(__name__)


class IngestIncomplete(Exception):
    """Some outputs could not be stored this time."""


class VersionMissing(ProviderError):
    """The provider refused the prediction and answers 404 for the model's version: the model
    can no longer generate (training is told, and marks it unavailable)."""

    def __init__(self, version: str) -> None:
        super().__init__(f"the provider no longer has the model's version {version}", status=404)


MODEL_UNAVAILABLE = "model_unavailable"


class GenerationJobs(RowJobs[GenerationRecord]):
    table = "generations"
    name = "generation"

    def __init__(
        self,
        db: Database,
        storage: Storage,
        predictions: PredictionsPort,
        settings: GenerationSettings,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(
            db,
            JobSettings(
                poll_interval_s=settings.work_poll_interval_s,
                batch=settings.work_batch,
                lease_s=settings.work_lease_s,
                max_attempts=settings.work_max_attempts,
            ),
        )
        self.storage = storage
        self.predictions = predictions
        self.settings = settings
        self.http = http or httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=10.0))

    async def close(self) -> None:
        await self.http.aclose()

    async def load(
        self, uow: UnitOfWork, row_id: uuid.UUID, *, lock: bool
    ) -> GenerationRecord | None:
        return await load(uow, row_id, lock=lock)

    async def save(self, uow: UnitOfWork, row: GenerationRecord, **changes: Any) -> None:
        await save(uow, row, **changes)

    def max_attempts(self, kind: str) -> int:
        if kind == "ingest":
            return self.settings.ingest_max_attempts
        return self.settings.work_max_attempts

    def permanent(self, error: BaseException) -> bool:
        return isinstance(error, ProviderError) and error.permanent

    async def give_up(
        self, uow: UnitOfWork, row: GenerationRecord, kind: str, error: BaseException
    ) -> bool:
        if kind == "launch" and isinstance(error, VersionMissing):
            await fail(
                uow,
                row,
                MODEL_UNAVAILABLE,
                "the model's trained version is no longer available at the provider; "
                "train the model again",
            )
            uow.emit(
                ModelVersionMissingV1(
                    user_id=row.user_id, model_id=row.model_id, generation_id=row.id
                )
            )
            return True
        if kind == "launch":
            await fail(uow, row, "launch_failed", str(error))
            return True
        if kind == "ingest":
            # What could be stored is delivered; the rest is released, never charged.
            await finish(uow, row, await self._stored_count(uow, row))
            return True
        if kind == "poll" and isinstance(error, ProviderError) and error.gone:
            # Only a prediction Replicate no longer has is lost; a refused token is ours to fix.
            await fail(uow, row, "provider_lost", str(error))
            return True
        return False

    # -- steps ---------------------------------------------------------------------------------

    async def step_ask_credits(self, gen: GenerationRecord) -> None:
        async with self.locked(gen) as (uow, current):
            if (
                current.state is not GenerationStatus.AWAITING_CREDITS
                or current.work != "ask_credits"
            ):
                return
            uow.emit(credits_requested(current))
            again = datetime.now(UTC) + timedelta(seconds=self.settings.credits_ask_again_s)
            await save(uow, current, work_after=again)
            await uow.commit()
        log.info("generation.credits_asked_again", generation_id=str(gen.id))

    async def step_launch(self, gen: GenerationRecord) -> None:
        if gen.state is not GenerationStatus.QUEUED or gen.provider_prediction_id is not None:
            return
        version = version_id(gen.version)
        prediction = None
        if gen.launch_attempted_at is not None:
            prediction = await self.predictions.find(
                version=version, prompt=gen.final_prompt, since=gen.launch_attempted_at
            )
            if prediction is not None:
                log.info("generation.adopted", generation_id=str(gen.id))
        if prediction is None:
            async with self.locked(gen) as (uow, current):
                if current.state is not GenerationStatus.QUEUED:
                    return
                await save(uow, current, launch_attempted_at=datetime.now(UTC))
                await uow.commit()
            inputs: dict[str, Any] = {
                "prompt": gen.final_prompt,
                "num_outputs": gen.num_outputs,
                "aspect_ratio": gen.aspect_ratio,
                "output_format": gen.output_format,
                "lora_scale": gen.lora_scale,
                "num_inference_steps": 28,
                "guidance_scale": 3,
                "output_quality": 90,
            }
            if gen.seed is not None:
                inputs["seed"] = gen.seed
            webhook = (
                self.settings.public_webhook_base_url.rstrip("/")
                + "/webhooks/replicate?service=generation"
            )
            try:
                prediction = await self.predictions.start(
                    version=version, inputs=inputs, webhook=webhook
                )
            except ProviderError as exc:
                # Refused for the version (Replicate: 422 "Invalid version or not permitted",
                # or 404): is it really gone? Only the provider's 404 for it says so.
                if exc.status in (404, 422) and not await self.predictions.version_exists(
                    gen.version
                ):
                    raise VersionMissing(gen.version) from exc
                raise
        now = datetime.now(UTC)
        try:
            async with self.locked(gen) as (uow, current):
                changes: dict[str, Any] = {
                    "provider_prediction_id": prediction.id,
                    "provider_status": prediction.status,
                    "provider_seen_at": now,
                }
                if not current.state.terminal:
                    changes |= {
                        "work": "poll",
                        "work_after": now + timedelta(seconds=self.settings.reconcile_quiet_s),
                    }
                else:
                    changes |= {"work": "cancel", "work_after": now, "work_attempts": 0}
                await save(uow, current, **changes)
                await uow.commit()
        except Vanished:
            # Erased while the prediction was being started: nobody else knows its id.
            try:
                await self.predictions.cancel(prediction.id)
            except ProviderError as exc:
                log.warning("generation.orphan_not_canceled", error=str(exc))
            raise
        log.info("generation.launched", generation_id=str(gen.id))

    async def step_poll(self, gen: GenerationRecord) -> None:
        if gen.provider_prediction_id is None:
            return
        prediction = await self.predictions.get(gen.provider_prediction_id)
        async with self.locked(gen) as (uow, current):
            await apply_provider(uow, current, prediction, self.settings.reconcile_quiet_s)
            if current.work == "poll" and current.state.terminal:
                await save(uow, current, work=None, work_after=None)
            await uow.commit()

    async def _stored_count(self, uow: UnitOfWork, gen: GenerationRecord) -> int:
        count = (
            await uow.session.execute(
                sa.text("SELECT count(*) FROM images WHERE generation_id = :g"), {"g": gen.id}
            )
        ).scalar_one()
        return int(count)

    async def step_ingest(self, gen: GenerationRecord) -> None:
        if gen.state.terminal:
            return
        async with self.db.uow(gen.user_id) as uow:
            stored = await self._stored_indices(uow, gen)
        failures: list[str] = []
        missing = [i for i in range(len(gen.output_urls)) if i not in stored]
        owner = await owner_key_of(self.db, gen.user_id) if missing else ""
        # The outputs are copied side by side; each is recorded as soon as it is stored.
        copies = await asyncio.gather(
            *(
                copy_output(
                    self.http,
                    self.storage,
                    gen.output_urls[index],
                    key_base=image_key_base(owner, gen.id, index),
                    max_bytes=self.settings.max_output_bytes,
                    thumbnail_size=self.settings.thumbnail_size,
                )
                for index in missing
            ),
            return_exceptions=True,
        )
        unrecorded = {
            i: c for i, c in zip(missing, copies, strict=True) if isinstance(c, StoredImage)
        }
        for index, image in zip(missing, copies, strict=True):
            if isinstance(image, OutputGone | OutputInvalid | httpx.HTTPError):
                failures.append(f"output {index}: {image}")
                continue
            if isinstance(image, BaseException):
                raise image
            last = not failures and index == missing[-1]
            ended: set[int] | None = None
            try:
                async with self.locked(gen) as (uow, current):
                    if current.state.terminal:
                        ended = await self._stored_indices(uow, gen)
                    else:
                        await self._record(uow, current, index, image, last)
                        await uow.commit()
            except Vanished:
                # Erased meanwhile: its images and their rows went with it.
                await self._drop(list(unrecorded.values()))
                log.info("generation.ingest_abandoned", why="erased", dropped=len(unrecorded))
                raise
            if ended is not None:
                # Canceled (or being erased) meanwhile: nothing more is stored or charged,
                # and no object is left without its row.
                dropped = [c for i, c in unrecorded.items() if i not in ended]
                await self._drop(dropped)
                log.info("generation.ingest_abandoned", why="ended", dropped=len(dropped))
                return
            unrecorded.pop(index, None)
            stored.add(index)
            if last:
                return
        if failures:
            raise IngestIncomplete("; ".join(failures))
        async with self.locked(gen) as (uow, current):
            await finish(uow, current, await self._stored_count(uow, current))
            await uow.commit()

    async def _record(
        self,
        uow: UnitOfWork,
        gen: GenerationRecord,
        index: int,
        image: StoredImage,
        last: bool,
    ) -> None:
        """The stored output's row, and the outcome with the last one."""
        await uow.session.execute(
            sa.text(
                "INSERT INTO images (id, user_id, generation_id, model_id, idx, "
                "object_key, thumbnail_key, content_type, width, height, size_bytes, "
                "blurhash) VALUES (:id, :u, :g, :m, :idx, :key, :thumb, :ct, :w, :h, "
                ":size, :bh) ON CONFLICT (generation_id, idx) DO NOTHING"
            ),
            {
                "id": uuid.uuid4(),
                "u": gen.user_id,
                "g": gen.id,
                "m": gen.model_id,
                "idx": index,
                "key": image.key,
                "thumb": image.thumbnail_key,
                "ct": image.content_type,
                "w": image.width,
                "h": image.height,
                "size": image.size_bytes,
                "bh": image.blurhash,
            },
        )
        delivered = await self._stored_count(uow, gen)
        await save(uow, gen, delivered=delivered)
        if last:
            # Every output is in: the outcome commits with the last image.
            await finish(uow, gen, delivered)

    async def cancel_at_provider(self, gen: GenerationRecord) -> bool:
        """Cancel the generation's prediction at Replicate, finding it again if its id was
        never recorded; False when there was none to cancel. Canceling a finished prediction
        changes nothing, so this may run again."""
        prediction_id = gen.provider_prediction_id
        if prediction_id is None and gen.launch_attempted_at is not None:
            found = await self.predictions.find(
                version=version_id(gen.version),
                prompt=gen.final_prompt,
                since=gen.launch_attempted_at,
            )
            prediction_id = found.id if found else None
        if prediction_id is None:
            return False
        await self.predictions.cancel(prediction_id)
        return True

    async def step_cancel(self, gen: GenerationRecord) -> None:
        await self.cancel_at_provider(gen)
        async with self.locked(gen) as (uow, current):
            if current.work == "cancel":
                await save(uow, current, work=None, work_after=None, provider_status="canceled")
            await uow.commit()

    async def _stored_indices(self, uow: UnitOfWork, gen: GenerationRecord) -> set[int]:
        rows = await uow.session.execute(
            sa.text("SELECT idx FROM images WHERE generation_id = :g"), {"g": gen.id}
        )
        return {int(r[0]) for r in rows}

    async def _drop(self, images: list[StoredImage]) -> None:
        """Objects copied for a generation that ended meanwhile: no row will ever name them."""
        for image in images:
            for key in (image.key, image.thumbnail_key):
                try:
                    await self.storage.delete(key)
                except Exception as exc:  # left for the next erasure round, or a sweep
                    # The message would name the key, and the key the user.
                    log.warning("generation.orphan_object_kept", error=type(exc).__name__)
