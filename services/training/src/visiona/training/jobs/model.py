"""Background work on models: launch, poll (the reconciler), finalize, cancel, purge.

A model row names its next step in ``work``; this worker claims due rows with a lease
(``lease_until``) so several replicas share the work and a crashed one's rows come back when
the lease lapses. Every step is idempotent and records its progress as it goes:

- ``ask_credits`` (while the model awaits billing's answer): billing's hold is asked for again
  every ``credits_ask_again_s``, as a new event for the same training, in case the request or
  the answer was lost (a dead-lettered event waits for an operator's redrive). Billing's answer
  replaces the step (``launch``, or the model fails).
- ``launch`` (after billing reserved the credits): zip the photos into S3, create the
  destination model, start the training with a presigned dataset URL and our webhook. The
  attempt is recorded before the (non-idempotent) create call; if its answer is lost, the
  next attempt adopts the training the provider has instead of starting another.
- ``poll``: a training the provider has been quiet about for ``reconcile_quiet_s`` is asked
  for its state, so a lost webhook never leaves a model training forever. Each webhook
  pushes the next poll back.
- ``finalize``: copy the LoRA weights from the provider's (expiring) URL into our storage,
  then mark the model ready and emit ``training.model.ready.v1``.
- ``cancel``: tell the provider to stop a training we no longer want.
- ``purge``: after a delete, remove the provider's versions and model and our objects, then
  the row.
- ``verify`` (a ready model, every ``version_check_interval_s``, or at once when generation
  found its version refused): ask the provider for the trained version; a 404 makes the model
  ``unavailable`` (``training.model.unavailable.v1``).

A step that fails is retried with exponential backoff; after ``work_max_attempts`` a launch or
a finalize gives up and fails the model (billing releases the credits), while cancel, poll
and purge keep trying at the longest interval.
"""

from __future__ import annotations

import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from typing import BinaryIO, cast

from visiona.kit.db import UnitOfWork
from visiona.kit.jobs import Vanished
from visiona.kit.logging import get_logger
from visiona.kit.owners import find_owner_key, owner_key_of
from visiona.kit.replicate import ProviderError, ReplicateJobs
from visiona.training.config import TrainingSettings
from visiona.training.domain import model as domain
from visiona.training.domain.model import Model, ModelStatus
from visiona.training.providers.replicate import ReplicatePort
from visiona.training.repository import model as repo
from visiona.training.repository import photo as photo_repo
from visiona.training.service import dataset

log = get_logger(__name__)

# What giving up on a step means for the model. A poll gives up only when the provider says
# the training does not exist (a 4xx), never because it is unreachable for a while.
_GIVE_UP = {
    "launch": "launch_failed",
    "finalize": "weights_unavailable",
    "poll": "provider_lost",
}


class _Gone(Exception):
    """The provider's file is gone for good (404/410)."""


# Keys name the user's opaque owner key (visiona.kit.owners), never the user id.
def weights_key(owner: str, model_id: uuid.UUID) -> str:
    return f"models/{owner}/{model_id}/weights.tar"


def dataset_key(owner: str, model_id: uuid.UUID) -> str:
    return f"datasets/{owner}/{model_id}.zip"


def provider_model_name(model: Model) -> str:
    """No personal data in the provider's names: the model id only."""
    return f"vsn-{model.id.hex}"


def _now() -> datetime:
    return datetime.now(UTC)


class ModelJobs(ReplicateJobs[Model, ReplicatePort]):
    rows = repo.ROWS
    name = "training"
    settings: TrainingSettings

    async def record(self, uow: UnitOfWork, row: Model) -> None:
        await repo.save(uow, row)

    def permanent(self, error: BaseException) -> bool:
        return super().permanent(error) or isinstance(error, _Gone | dataset.DatasetError)

    async def give_up(self, uow: UnitOfWork, row: Model, kind: str, error: BaseException) -> bool:
        """A launch or a weights copy that cannot succeed fails the model (billing releases);
        polls, cancels and purges keep trying."""
        if kind not in _GIVE_UP:
            return False
        if kind == "poll" and not (isinstance(error, ProviderError) and error.gone):
            # Only a training Replicate no longer has is lost; a refused token is ours to fix.
            return False
        reason = "dataset_incomplete" if isinstance(error, dataset.DatasetError) else _GIVE_UP[kind]
        row.fail(reason, str(error), _now())
        await self.record(uow, row)
        return True

    # -- steps ---------------------------------------------------------------------------------

    async def step_ask_credits(self, model: Model) -> None:
        if await self.transition(
            model, lambda m: m.ask_credits_again(self.settings.credits_ask_again_s, _now())
        ):
            log.info("training.credits_asked_again", model_id=str(model.id))

    async def step_launch(self, model: Model) -> None:
        if model.state is not ModelStatus.PREPARING or model.deleted_at is not None:
            return
        if model.dataset_key is None:
            await self._build_dataset(model)
        if model.provider_model is None:
            destination = await self.provider.ensure_model(provider_model_name(model))
            await self.transition(model, lambda m: m.destination_created(destination))
            model.provider_model = destination
        assert model.provider_model is not None and model.dataset_key is not None
        if model.provider_training_id is not None:
            return
        training = None
        if model.launch_attempted_at is not None:
            # An earlier attempt may have started one and died before recording it.
            training = await self.provider.find_training(model.provider_model)
            if training is not None:
                log.info(
                    "training.adopted", model_id=str(model.id), provider_training_id=training.id
                )
        if training is None:
            seen = model.launch_attempted_at
            if not await self.transition(model, lambda m: m.launch_attempted(_now(), seen=seen)):
                return  # canceled while we were preparing
            chosen = domain.preset(model.preset)
            inputs = {
                "input_images": self.storage.presigned_get(
                    model.dataset_key,
                    expires=timedelta(seconds=self.settings.dataset_url_ttl_s),
                    for_provider=True,
                ),
                "trigger_word": model.trigger_word,
                "steps": chosen.steps,
                "lora_rank": chosen.lora_rank,
                "learning_rate": chosen.learning_rate,
                "batch_size": 1,
                "resolution": "512,768,1024",
                "autocaption": True,
            }
            webhook = self.settings.public_webhook_base_url.rstrip("/") + "/webhooks/replicate"
            training = await self.provider.start_training(
                destination=model.provider_model, inputs=inputs, webhook=webhook
            )
        await self.transition(
            model, lambda m: m.launched(training, self.settings.reconcile_quiet_s, _now())
        )
        log.info("training.launched", model_id=str(model.id), provider_training_id=training.id)

    async def _build_dataset(self, model: Model) -> None:
        async with self.db.uow(model.user_id) as uow:
            keys = await photo_repo.object_keys(uow, model.photo_ids)
        missing = [p for p in model.photo_ids if not keys.get(p)]
        if missing:
            raise dataset.DatasetError(f"{len(missing)} photo(s) of the model are gone")
        members = [(f"{i:02d}.jpg", str(keys[p])) for i, p in enumerate(model.photo_ids, 1)]
        key = dataset_key(await owner_key_of(self.db, model.user_id), model.id)
        built = await dataset.assemble(self.storage, members, key)
        await self.transition(model, lambda m: m.dataset_built(key))
        model.dataset_key = key
        log.info("training.dataset_built", model_id=str(model.id), bytes=built.size)

    async def step_poll(self, model: Model) -> None:
        if model.provider_training_id is None:
            return
        training = await self.provider.get_training(model.provider_training_id)
        await self.transition(
            model, lambda m: m.polled(training, self.settings.reconcile_quiet_s, _now())
        )
        log.info("training.reconciled", model_id=str(model.id), provider_status=training.status)

    async def step_finalize(self, model: Model) -> None:
        if model.state.terminal or not model.weights_url:
            return
        key = weights_key(await owner_key_of(self.db, model.user_id), model.id)
        await self._copy(model.weights_url, key)
        await self.transition(
            model, lambda m: m.succeed(key, self.settings.version_check_interval_s, _now())
        )

    async def step_verify(self, model: Model) -> None:
        """Ask the provider whether a ready model's trained version is still there; a 404
        makes the model unavailable, anything else is asked again later."""
        if model.state is not ModelStatus.SUCCEEDED or model.version is None:
            return
        exists = await self.provider.version_exists(model.version)
        await self.transition(
            model,
            lambda m: m.version_checked(exists, self.settings.version_check_interval_s, _now()),
        )

    async def _copy(self, url: str, key: str) -> None:
        """Stream the provider's file into our storage (spooled to disk past 8 MiB)."""
        with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as spool:
            async with self.http.stream("GET", url) as response:
                if response.status_code in (404, 410):
                    raise _Gone(f"the provider's file answered {response.status_code}")
                response.raise_for_status()
                limit = self.settings.max_weights_bytes
                async for chunk in response.aiter_bytes(1024 * 1024):
                    spool.write(chunk)
                    if spool.tell() > limit:
                        raise _Gone(f"the provider's file is over {limit} bytes")
            size = spool.tell()
            spool.seek(0)
            await self.storage.put_stream(
                key, cast(BinaryIO, spool), length=size, content_type="application/x-tar"
            )

    async def _stop_provider(self, model: Model) -> None:
        training_id = model.provider_training_id
        if training_id is None and model.launch_attempted_at and model.provider_model:
            found = await self.provider.find_training(model.provider_model)
            training_id = found.id if found else None
        if training_id is not None:
            await self.provider.cancel_training(training_id)

    async def step_cancel(self, model: Model) -> None:
        await self._stop_provider(model)
        await self.transition(model, lambda m: m.canceled_at_provider())

    async def step_purge(self, model: Model) -> None:
        if model.provider_running:
            await self._stop_provider(model)
        if model.provider_model:
            await self.provider.delete_model(model.provider_model)
        async with self.db.uow(model.user_id) as uow:
            owner = await find_owner_key(uow, model.user_id)
        # The recorded keys, and the ones a step interrupted before recording them would use.
        keys = {model.dataset_key, model.weights_key}
        if owner is not None:
            keys |= {dataset_key(owner, model.id), weights_key(owner, model.id)}
        for key in sorted(k for k in keys if k):
            await self.storage.delete(key)
        async with self.db.uow(model.user_id) as uow:
            await repo.delete_purged(uow, model.id)
            await uow.commit()
        log.info("training.model_purged", model_id=str(model.id))
        raise Vanished()
