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
from datetime import UTC, datetime
from typing import Any

import httpx

from visiona.generation.config import GenerationSettings
from visiona.generation.domain.generation import Generation, GenerationStatus, version_id
from visiona.generation.domain.image import OutputInvalid, StoredImage, image_key_base
from visiona.generation.providers.replicate import PredictionsPort
from visiona.generation.repository import generation as generations
from visiona.generation.repository import image as images
from visiona.generation.service.image import OutputGone, copy_output
from visiona.kit.db import UnitOfWork
from visiona.kit.jobs import Vanished
from visiona.kit.logging import get_logger
from visiona.kit.owners import owner_key_of
from visiona.kit.replicate import ProviderError, ReplicateJobs

log = get_logger(__name__)


class IngestIncomplete(Exception):
    """Some outputs could not be stored this time."""


class VersionMissing(ProviderError):
    """The provider refused the prediction and answers 404 for the model's version: the model
    can no longer generate (training is told, and marks it unavailable)."""

    def __init__(self, version: str) -> None:
        super().__init__(f"the provider no longer has the model's version {version}", status=404)


class GenerationJobs(ReplicateJobs[Generation, PredictionsPort]):
    rows = generations.ROWS
    name = "generation"
    settings: GenerationSettings

    async def record(self, uow: UnitOfWork, row: Generation) -> None:
        await generations.save(uow, row)

    def max_attempts(self, kind: str) -> int:
        if kind == "ingest":
            return self.settings.ingest_max_attempts
        return self.settings.work_max_attempts

    async def give_up(
        self, uow: UnitOfWork, row: Generation, kind: str, error: BaseException
    ) -> bool:
        now = datetime.now(UTC)
        if kind == "launch" and isinstance(error, VersionMissing):
            row.model_version_missing(now)
        elif kind == "launch":
            row.fail("launch_failed", str(error), now)
        elif kind == "ingest":
            # What could be stored is delivered; the rest is released, never charged.
            row.succeed(await images.stored_count(uow, row.id), now)
        elif kind == "poll" and isinstance(error, ProviderError) and error.gone:
            # Only a prediction Replicate no longer has is lost; a refused token is ours to fix.
            row.fail("provider_lost", str(error), now)
        else:
            return False
        await self.record(uow, row)
        return True

    # -- steps ---------------------------------------------------------------------------------

    async def step_ask_credits(self, gen: Generation) -> None:
        if await self.transition(
            gen, lambda g: g.ask_credits_again(self.settings.credits_ask_again_s, datetime.now(UTC))
        ):
            log.info("generation.credits_asked_again", generation_id=str(gen.id))

    async def step_launch(self, gen: Generation) -> None:
        if gen.state is not GenerationStatus.QUEUED or gen.provider_prediction_id is not None:
            return
        version = version_id(gen.version)
        prediction = None
        if gen.launch_attempted_at is not None:
            prediction = await self.provider.find(
                version=version, prompt=gen.final_prompt, since=gen.launch_attempted_at
            )
            if prediction is not None:
                log.info("generation.adopted", generation_id=str(gen.id))
        if prediction is None:
            seen = gen.launch_attempted_at
            if not await self.transition(
                gen, lambda g: g.launch_attempted(datetime.now(UTC), seen=seen)
            ):
                return
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
                prediction = await self.provider.start(
                    version=version, inputs=inputs, webhook=webhook
                )
            except ProviderError as exc:
                # Refused for the version (Replicate: 422 "Invalid version or not permitted",
                # or 404): is it really gone? Only the provider's 404 for it says so.
                if exc.status in (404, 422) and not await self.provider.version_exists(gen.version):
                    raise VersionMissing(gen.version) from exc
                raise
        try:
            await self.transition(
                gen,
                lambda g: g.launched(
                    prediction.id,
                    prediction.status,
                    datetime.now(UTC),
                    self.settings.reconcile_quiet_s,
                ),
            )
        except Vanished:
            # Erased while the prediction was being started: nobody else knows its id.
            try:
                await self.provider.cancel(prediction.id)
            except ProviderError as exc:
                log.warning("generation.orphan_not_canceled", error=str(exc))
            raise
        log.info("generation.launched", generation_id=str(gen.id))

    async def step_poll(self, gen: Generation) -> None:
        if gen.provider_prediction_id is None:
            return
        prediction = await self.provider.get(gen.provider_prediction_id)

        def polled(current: Generation) -> bool:
            moved = current.apply_provider_status(
                prediction.status,
                outputs=prediction.outputs,
                error=prediction.error,
                now=datetime.now(UTC),
                quiet_s=self.settings.reconcile_quiet_s,
            )
            current.stop_polling()
            return moved

        await self.transition(gen, polled)

    async def step_ingest(self, gen: Generation) -> None:
        if gen.state.terminal:
            return
        async with self.db.uow(gen.user_id) as uow:
            stored = await images.stored_indices(uow, gen.id)
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
                        ended = await images.stored_indices(uow, gen.id)
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
            current.succeed(await images.stored_count(uow, current.id), datetime.now(UTC))
            await generations.save(uow, current)
            await uow.commit()

    async def _record(
        self,
        uow: UnitOfWork,
        gen: Generation,
        index: int,
        image: StoredImage,
        last: bool,
    ) -> None:
        """The stored output's row, and the outcome with the last one."""
        await images.insert(uow, gen, index, image)
        delivered = await images.stored_count(uow, gen.id)
        gen.images_stored(delivered)
        if last:
            # Every output is in: the outcome commits with the last image.
            gen.succeed(delivered, datetime.now(UTC))
        await generations.save(uow, gen)

    async def cancel_at_provider(self, gen: Generation) -> bool:
        """Cancel the generation's prediction at Replicate, finding it again if its id was
        never recorded; False when there was none to cancel. Canceling a finished prediction
        changes nothing, so this may run again."""
        prediction_id = gen.provider_prediction_id
        if prediction_id is None and gen.launch_attempted_at is not None:
            found = await self.provider.find(
                version=version_id(gen.version),
                prompt=gen.final_prompt,
                since=gen.launch_attempted_at,
            )
            prediction_id = found.id if found else None
        if prediction_id is None:
            return False
        await self.provider.cancel(prediction_id)
        return True

    async def step_cancel(self, gen: Generation) -> None:
        await self.cancel_at_provider(gen)
        await self.transition(gen, lambda g: g.canceled_at_provider())

    async def _drop(self, images: list[StoredImage]) -> None:
        """Objects copied for a generation that ended meanwhile: no row will ever name them."""
        for image in images:
            for key in (image.key, image.thumbnail_key):
                try:
                    await self.storage.delete(key)
                except Exception as exc:  # left for the next erasure round, or a sweep
                    # The message would name the key, and the key the user.
                    log.warning("generation.orphan_object_kept", error=type(exc).__name__)
