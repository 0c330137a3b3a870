"""Background work on models: launch, poll (the reconciler), finalize, cancel, purge.

A model row names its next step in ``work``; this worker claims due rows with a lease
(``lease_until``) so several replicas share the work and a crashed one's rows come back when
the lease lapses. Every step is idempotent and records its progress as it goes:

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

A step that fails is retried with exponential backoff; after ``work_max_attempts`` a launch or
a finalize gives up and fails the model (billing releases the credits), while cancel, poll
and purge keep trying at the longest interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO, cast

import httpx
import sqlalchemy as sa

from visiona.kit.db import Database, UnitOfWork
from visiona.kit.logging import get_logger
from visiona.kit.storage import Storage
from visiona.training import dataset, domain
from visiona.training.config import TrainingSettings
from visiona.training.domain import ModelStatus
from visiona.training.models import ModelRecord, apply_provider, fail, load, save, succeed
from visiona.training.replicate_api import ProviderError, ReplicatePort

log = get_logger(__name__)

MAX_BACKOFF_S = 300.0
_GIVE_UP = {"launch": "launch_failed", "finalize": "weights_unavailable"}


class _Vanished(Exception):
    """The row is gone (purged): nothing to settle."""


class _Gone(Exception):
    """The provider's file is gone for good (404/410)."""


def weights_key(model: ModelRecord) -> str:
    return f"models/{model.user_id}/{model.id}/weights.tar"


def dataset_key(model: ModelRecord) -> str:
    return f"datasets/{model.user_id}/{model.id}.zip"


def provider_model_name(model: ModelRecord) -> str:
    """No personal data in the provider's names: the model id only."""
    return f"vsn-{model.id.hex}"


class ModelJobs:
    def __init__(
        self,
        db: Database,
        storage: Storage,
        replicate: ReplicatePort,
        settings: TrainingSettings,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.db = db
        self.storage = storage
        self.replicate = replicate
        self.settings = settings
        self.http = http or httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=10.0))
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """New work may be due (called after a commit that scheduled some)."""
        self._wake.set()

    async def close(self) -> None:
        await self.http.aclose()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                done = await self.run_once()
            except Exception:
                log.exception("training.work_loop_failed")
                done = 0
            if done:
                continue
            self._wake.clear()
            waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
            await asyncio.wait(
                waiters, timeout=self.settings.work_poll_interval_s, return_when="FIRST_COMPLETED"
            )
            for w in waiters:
                w.cancel()

    async def run_once(self) -> int:
        """Claim and run the due steps; the number run."""
        claimed = await self._claim()
        if claimed:
            await asyncio.gather(*(self._run(model) for model in claimed))
        return len(claimed)

    async def _claim(self) -> list[ModelRecord]:
        async with self.db.uow(system=True) as uow:
            due = (
                await uow.session.execute(
                    sa.text(
                        "SELECT id, user_id, work FROM models WHERE work IS NOT NULL "
                        "AND work_after <= now() AND (lease_until IS NULL OR lease_until < now()) "
                        "ORDER BY work_after LIMIT :n"
                    ),
                    {"n": self.settings.work_batch},
                )
            ).all()
        claimed = []
        for row in due:
            async with self.db.uow(row.user_id) as uow:
                got = (
                    await uow.session.execute(
                        sa.text(
                            "UPDATE models SET lease_until = now() + make_interval(secs => :lease),"
                            " work_attempts = work_attempts + 1 WHERE id = :id AND work = :work "
                            "AND (lease_until IS NULL OR lease_until < now()) RETURNING id"
                        ),
                        {"id": row.id, "work": row.work, "lease": self.settings.work_lease_s},
                    )
                ).first()
                if got is None:
                    continue  # another worker took it
                model = await load(uow, row.id, lock=False)
                await uow.commit()
            if model is not None:
                claimed.append(model)
        return claimed

    @contextlib.asynccontextmanager
    async def _locked(self, model: ModelRecord) -> AsyncIterator[tuple[UnitOfWork, ModelRecord]]:
        """The model's current row, locked, in a unit of work the caller commits."""
        async with self.db.uow(model.user_id) as uow:
            current = await load(uow, model.id)
            if current is None:
                raise _Vanished()
            yield uow, current

    async def _run(self, model: ModelRecord) -> None:
        kind = model.work
        assert kind is not None
        step = getattr(self, f"_{kind}")
        error: BaseException | None = None
        heartbeat = asyncio.create_task(self._keep_lease(model))
        try:
            await step(model)
        except _Vanished:
            return
        except Exception as exc:  # retried below
            error = exc
            log.warning(
                "training.work_failed",
                model_id=str(model.id),
                work=kind,
                attempt=model.work_attempts,
                error=str(exc),
            )
        finally:
            heartbeat.cancel()
        try:
            await self._settle(model, kind, error)
        except _Vanished:
            return

    async def _keep_lease(self, model: ModelRecord) -> None:
        """Renew the lease while a step runs, so a long step keeps it and a crashed worker's
        lease lapses after ``work_lease_s`` at most."""
        lease = self.settings.work_lease_s
        while True:
            await asyncio.sleep(lease / 3)
            try:
                async with self.db.uow(model.user_id) as uow:
                    await uow.session.execute(
                        sa.text(
                            "UPDATE models SET lease_until = now() + make_interval(secs => :s) "
                            "WHERE id = :id AND lease_until IS NOT NULL"
                        ),
                        {"id": model.id, "s": lease},
                    )
                    await uow.commit()
            except Exception:
                log.warning("training.lease_renewal_failed", model_id=str(model.id))

    async def _settle(self, model: ModelRecord, kind: str, error: BaseException | None) -> None:
        async with self._locked(model) as (uow, current):
            changes: dict[str, Any] = {"lease_until": None}
            if error is not None and current.work == kind:
                permanent = isinstance(error, ProviderError | _Gone | dataset.DatasetError) and (
                    not isinstance(error, ProviderError) or error.permanent
                )
                give_up = kind in _GIVE_UP and (
                    permanent or current.work_attempts >= self.settings.work_max_attempts
                )
                if give_up:
                    await save(uow, current, **changes)
                    reason = (
                        "dataset_incomplete"
                        if isinstance(error, dataset.DatasetError)
                        else _GIVE_UP[kind]
                    )
                    await fail(uow, current, reason, str(error))
                    await uow.commit()
                    return
                delay = min(2.0 ** max(current.work_attempts - 1, 0), MAX_BACKOFF_S)
                changes["work_after"] = datetime.now(UTC) + timedelta(seconds=delay)
            elif error is None and current.work == kind:
                changes["work_attempts"] = 0
            await save(uow, current, **changes)
            await uow.commit()

    # -- steps ---------------------------------------------------------------------------------

    async def _launch(self, model: ModelRecord) -> None:
        if model.state is not ModelStatus.PREPARING or model.deleted_at is not None:
            return
        if model.dataset_key is None:
            await self._build_dataset(model)
        if model.provider_model is None:
            destination = await self.replicate.ensure_model(provider_model_name(model))
            async with self._locked(model) as (uow, current):
                await save(uow, current, provider_model=destination)
                await uow.commit()
            model.provider_model = destination
        assert model.provider_model is not None and model.dataset_key is not None
        if model.provider_training_id is not None:
            return
        training = None
        if model.launch_attempted_at is not None:
            # An earlier attempt may have started one and died before recording it.
            training = await self.replicate.find_training(model.provider_model)
            if training is not None:
                log.info(
                    "training.adopted", model_id=str(model.id), provider_training_id=training.id
                )
        if training is None:
            async with self._locked(model) as (uow, current):
                if current.state is not ModelStatus.PREPARING:
                    return  # canceled while we were preparing
                await save(uow, current, launch_attempted_at=datetime.now(UTC))
                await uow.commit()
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
            training = await self.replicate.start_training(
                destination=model.provider_model, inputs=inputs, webhook=webhook
            )
        now = datetime.now(UTC)
        async with self._locked(model) as (uow, current):
            changes: dict[str, Any] = {
                "provider_training_id": training.id,
                "provider_status": training.status,
                "provider_seen_at": now,
            }
            if current.state is ModelStatus.PREPARING:
                changes |= {
                    "status": ModelStatus.QUEUED.value,
                    "queued_at": now,
                    "work": "poll",
                    "work_after": now + timedelta(seconds=self.settings.reconcile_quiet_s),
                }
            elif current.state.terminal and current.work != "purge":
                # Canceled while the create call was in flight: stop what we just started.
                changes |= {"work": "cancel", "work_after": now, "work_attempts": 0}
            await save(uow, current, **changes)
            await uow.commit()
        log.info("training.launched", model_id=str(model.id), provider_training_id=training.id)

    async def _build_dataset(self, model: ModelRecord) -> None:
        async with self.db.uow(model.user_id) as uow:
            keys = {
                r.id: r.object_key
                for r in await uow.session.execute(
                    sa.text("SELECT id, object_key FROM photos WHERE id = ANY(:ids)"),
                    {"ids": model.photo_ids},
                )
            }
        missing = [p for p in model.photo_ids if not keys.get(p)]
        if missing:
            raise dataset.DatasetError(f"{len(missing)} photo(s) of the model are gone")
        members = [(f"{i:02d}.jpg", str(keys[p])) for i, p in enumerate(model.photo_ids, 1)]
        key = dataset_key(model)
        built = await dataset.assemble(self.storage, members, key)
        async with self._locked(model) as (uow, current):
            await save(uow, current, dataset_key=key)
            await uow.commit()
        model.dataset_key = key
        log.info("training.dataset_built", model_id=str(model.id), bytes=built.size)

    async def _poll(self, model: ModelRecord) -> None:
        if model.provider_training_id is None:
            return
        training = await self.replicate.get_training(model.provider_training_id)
        async with self._locked(model) as (uow, current):
            await apply_provider(uow, current, training, self.settings.reconcile_quiet_s)
            if current.work == "poll" and current.state.terminal:
                await save(uow, current, work=None, work_after=None)
            await uow.commit()
        log.info("training.reconciled", model_id=str(model.id), provider_status=training.status)

    async def _finalize(self, model: ModelRecord) -> None:
        if model.state.terminal or not model.weights_url:
            return
        key = weights_key(model)
        await self._copy(model.weights_url, key)
        async with self._locked(model) as (uow, current):
            await succeed(uow, current, key)
            await uow.commit()

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

    async def _stop_provider(self, model: ModelRecord) -> None:
        training_id = model.provider_training_id
        if training_id is None and model.launch_attempted_at and model.provider_model:
            found = await self.replicate.find_training(model.provider_model)
            training_id = found.id if found else None
        if training_id is not None:
            await self.replicate.cancel_training(training_id)

    async def _cancel(self, model: ModelRecord) -> None:
        await self._stop_provider(model)
        async with self._locked(model) as (uow, current):
            if current.work == "cancel":
                await save(uow, current, work=None, work_after=None, provider_status="canceled")
            await uow.commit()

    async def _purge(self, model: ModelRecord) -> None:
        if model.provider_running:
            await self._stop_provider(model)
        if model.provider_model:
            await self.replicate.delete_model(model.provider_model)
        for key in (model.dataset_key, model.weights_key, dataset_key(model), weights_key(model)):
            if key:
                await self.storage.delete(key)
        async with self.db.uow(model.user_id) as uow:
            await uow.session.execute(
                sa.text("DELETE FROM models WHERE id = :id AND deleted_at IS NOT NULL"),
                {"id": model.id},
            )
            await uow.commit()
        log.info("training.model_purged", model_id=str(model.id))
        raise _Vanished()
