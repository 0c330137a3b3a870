"""Models and their training: the stored record, its transitions, and the user's use cases.

Every change to a model goes through :func:`load` (``FOR UPDATE``) and :func:`save` in one
unit of work, with its outcome event emitted into the same transaction. Transitions are
monotonic (:func:`visiona.training.domain.can_advance`): billing's answer, webhooks, the
reconciler and the user can race, and the first to reach a final status wins.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa

from visiona.kit.db import Database, UnitOfWork
from visiona.kit.errors import Conflict, InvalidArgument, NotFound
from visiona.kit.events import (
    ModelReadyV1,
    ModelUnavailableV1,
    TrainingCanceledV1,
    TrainingFailedV1,
    TrainingProgressedV1,
    TrainingRequestedV1,
)
from visiona.kit.idempotency import RequestKey
from visiona.kit.logging import get_logger
from visiona.kit.paging import decode_cursor, encode_cursor, page_size, parse_id
from visiona.kit.rows import RowStore
from visiona.training import domain
from visiona.training.domain import ModelStatus
from visiona.training.replicate_api import ProviderTraining

log = get_logger(__name__)

PROVIDER_FINAL = frozenset({"succeeded", "failed", "canceled"})
UNAVAILABLE_REASON = "provider_version_missing"


@dataclass
class ModelRecord:
    id: uuid.UUID
    user_id: str
    name: str
    status: str
    preset: str
    trigger_word: str
    training_id: uuid.UUID
    photo_ids: list[uuid.UUID]
    hold_id: uuid.UUID | None
    dataset_key: str | None
    provider_model: str | None
    provider_training_id: str | None
    provider_status: str | None
    launch_attempted_at: datetime | None
    weights_url: str | None
    weights_key: str | None
    version: str | None
    progress: float
    failure_reason: str | None
    failure_message: str | None
    work: str | None
    work_after: datetime | None
    work_attempts: int
    lease_until: datetime | None
    provider_seen_at: datetime | None
    created_at: datetime
    queued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    deleted_at: datetime | None
    # When the retention sweep deleted the dataset zip (visiona.training.retention).
    dataset_purged_at: datetime | None

    @property
    def state(self) -> ModelStatus:
        return ModelStatus(self.status)

    @property
    def provider_running(self) -> bool:
        """The provider may still be training (or about to): a cancel must reach it."""
        return bool(self.provider_training_id or self.launch_attempted_at) and (
            self.provider_status not in PROVIDER_FINAL
        )


ROWS = RowStore("models", ModelRecord)
SELECT = ROWS.select
record = ROWS.record


async def load(uow: UnitOfWork, model_id: uuid.UUID, *, lock: bool = True) -> ModelRecord | None:
    return await ROWS.load(uow, model_id, lock=lock)


async def load_by_training(uow: UnitOfWork, training_id: uuid.UUID) -> ModelRecord | None:
    return await ROWS.load(uow, training_id, by="training_id")


save = ROWS.save


def progressed(uow: UnitOfWork, model: ModelRecord) -> None:
    """Tell live views (SSE) where a running training is."""
    uow.emit(
        TrainingProgressedV1(
            user_id=model.user_id,
            model_id=model.id,
            training_id=model.training_id,
            status=model.status,
            progress=round(float(model.progress), 3),
        )
    )


def _now() -> datetime:
    return datetime.now(UTC)


async def fail(uow: UnitOfWork, model: ModelRecord, reason: str, message: str) -> bool:
    """End the training without a model; billing releases the hold."""
    if model.state.terminal:
        return False
    await save(
        uow,
        model,
        status=ModelStatus.FAILED.value,
        failure_reason=reason,
        failure_message=message[:500],
        finished_at=_now(),
        **_stop_work(model),
    )
    uow.emit(
        TrainingFailedV1(
            user_id=model.user_id,
            training_id=model.training_id,
            model_id=model.id,
            reason=reason,
        )
    )
    log.info("training.failed", model_id=str(model.id), reason=reason)
    return True


async def cancel(uow: UnitOfWork, model: ModelRecord, reason: str) -> bool:
    """Cancel the training; the provider is told by the background work, billing releases."""
    if model.state.terminal:
        return False
    await save(
        uow,
        model,
        status=ModelStatus.CANCELED.value,
        failure_reason=reason,
        failure_message=None,
        finished_at=_now(),
        **_stop_work(model),
    )
    uow.emit(
        TrainingCanceledV1(
            user_id=model.user_id,
            training_id=model.training_id,
            model_id=model.id,
            reason=reason,
        )
    )
    log.info("training.canceled", model_id=str(model.id), reason=reason)
    return True


def _stop_work(model: ModelRecord) -> dict[str, Any]:
    if model.work == "purge":
        return {}
    if model.provider_running:
        return {"work": "cancel", "work_after": _now(), "work_attempts": 0}
    return {"work": None, "work_after": None}


async def schedule_purge(uow: UnitOfWork, model: ModelRecord, reason: str) -> None:
    """Hide the model and hand it to the background purge (``jobs.ModelJobs.step_purge``:
    the provider's training stopped, its versions and model deleted, our objects, the row).
    A training still running is canceled first, so billing releases its hold."""
    await cancel(uow, model, reason)
    await save(uow, model, deleted_at=_now(), work="purge", work_after=_now(), work_attempts=0)


async def refuse_while_erasing(uow: UnitOfWork) -> None:
    """A user whose account erasure is running gets nothing new (the unit of work's user;
    the erasure's row is visible only to them)."""
    erasing = await uow.session.execute(sa.text("SELECT EXISTS (SELECT 1 FROM erasures)"))
    if erasing.scalar():
        raise Conflict("this account is being deleted", code="account_erasing")


async def succeed(
    uow: UnitOfWork, model: ModelRecord, weights_key: str, verify_in_s: float
) -> bool:
    """The model is ready; its provider version is checked again every ``verify_in_s``."""
    if model.state.terminal or model.version is None:
        return False
    now = _now()
    await save(
        uow,
        model,
        status=ModelStatus.SUCCEEDED.value,
        weights_key=weights_key,
        progress=1.0,
        finished_at=now,
        work="verify",
        work_after=now + timedelta(seconds=verify_in_s),
        work_attempts=0,
    )
    uow.emit(
        ModelReadyV1(
            user_id=model.user_id,
            model_id=model.id,
            training_id=model.training_id,
            version=model.version,
        )
    )
    log.info("training.model_ready", model_id=str(model.id), version=model.version)
    return True


async def become_unavailable(uow: UnitOfWork, model: ModelRecord, message: str) -> bool:
    """The provider answered 404 for the model's trained version: the model can no longer
    generate, and says so (``unavailable``, reason ``provider_version_missing``)."""
    if not domain.can_become_unavailable(model.state):
        return False
    await save(
        uow,
        model,
        status=ModelStatus.UNAVAILABLE.value,
        failure_reason=UNAVAILABLE_REASON,
        failure_message=message[:500],
        work=None,
        work_after=None,
    )
    uow.emit(
        ModelUnavailableV1(
            user_id=model.user_id,
            model_id=model.id,
            training_id=model.training_id,
            reason=UNAVAILABLE_REASON,
        )
    )
    log.info("training.model_unavailable", model_id=str(model.id), reason=UNAVAILABLE_REASON)
    return True


async def apply_provider(
    uow: UnitOfWork, model: ModelRecord, training: ProviderTraining, quiet_s: float
) -> None:
    """Apply what the provider says about the model's training (webhook or poll)."""
    now = _now()
    changes: dict[str, Any] = {"provider_seen_at": now, "provider_status": training.status}
    if model.work == "poll":
        changes["work_after"] = now + timedelta(seconds=quiet_s)
    if model.state.terminal:
        await save(uow, model, **changes)
        return
    target = domain.PROVIDER_STATUS.get(training.status)
    if target is None:
        await save(uow, model, **changes)
        return
    progress = training.progress
    if target in (ModelStatus.QUEUED, ModelStatus.TRAINING):
        if domain.can_advance(model.state, target):
            changes["status"] = target.value
            if target is ModelStatus.TRAINING and model.started_at is None:
                changes["started_at"] = now
        if progress is not None and progress > model.progress:
            changes["progress"] = min(progress, 0.99)
        moved = "status" in changes or "progress" in changes
        await save(uow, model, **changes)
        if moved:
            progressed(uow, model)
    elif target is ModelStatus.SUCCEEDED:
        if not (training.version and training.weights_url):
            await save(uow, model, **changes)
            await fail(uow, model, "provider_output_invalid", "the trainer returned no weights")
            return
        if model.started_at is None:
            changes["started_at"] = now
        if domain.can_advance(model.state, ModelStatus.TRAINING):
            changes["status"] = ModelStatus.TRAINING.value
        if model.work not in ("finalize", "purge", "cancel"):
            changes |= {"work": "finalize", "work_after": now, "work_attempts": 0}
        changes |= {
            "version": training.version,
            "weights_url": training.weights_url,
            "progress": 0.99,
        }
        await save(uow, model, **changes)
    elif target is ModelStatus.FAILED:
        await save(uow, model, **changes)
        await fail(uow, model, "provider_failed", training.error or "the trainer failed")
    else:
        await save(uow, model, **changes)
        await cancel(uow, model, "provider_canceled")


async def _made_with(uow: UnitOfWork, user_id: str, key: RequestKey) -> ModelRecord | None:
    """The model the user's idempotency key made, if any; refused when that key came with a
    different request, and gone (as GET says) when the model has been deleted since."""
    row = (
        await uow.session.execute(
            sa.text(
                "SELECT id, request_fingerprint FROM models "
                "WHERE user_id = :u AND idempotency_key = :k"
            ),
            {"u": user_id, "k": key.key},
        )
    ).first()
    if row is None:
        return None
    key.check(row.request_fingerprint)
    model = await load(uow, row.id, lock=False)
    if model is None or model.deleted_at is not None:
        raise NotFound(
            f"the model {row.id} made with this Idempotency-Key has been deleted",
            code="model_not_found",
        )
    return model


@dataclass(frozen=True)
class Limits:
    max_concurrent_trainings: int
    max_stored_models: int


class EntitlementsPort(Protocol):
    async def limits(self, user_id: str) -> Limits: ...


def credits_requested(model: ModelRecord) -> TrainingRequestedV1:
    """The model's request to billing, asked again (a new event, the same training): billing
    holds once per training and answers a repeated request the same."""
    return TrainingRequestedV1(
        user_id=model.user_id,
        training_id=model.training_id,
        model_id=model.id,
        preset=model.preset,
    )


class ModelService:
    def __init__(
        self, db: Database, entitlements: EntitlementsPort, *, credits_ask_again_s: float = 60.0
    ) -> None:
        self.db = db
        self.entitlements = entitlements
        self.credits_ask_again_s = credits_ask_again_s

    async def create(
        self,
        user_id: str,
        *,
        name: str,
        photo_ids: list[str],
        preset: str | None,
        trigger_word: str | None,
        idempotency: RequestKey | None = None,
    ) -> tuple[ModelRecord, bool]:
        """Request a model's training; with an idempotency key, the model that key already
        made, as it stands now, if there is one (ADR 0009). Also says whether the answer is
        that earlier model (a replay)."""
        name = _checked_name(name)
        chosen = domain.preset(preset)
        word = domain.trigger_word(trigger_word)
        ids = [parse_id(p, "photo") for p in photo_ids]
        if len(set(ids)) != len(ids):
            raise InvalidArgument("photo_ids has duplicates", code="photo_ids_duplicate")
        domain.check_photo_count(len(ids))
        if idempotency is not None:
            # A retry whose first attempt committed (its answer lost on the way) gets that
            # model before anything it changed is checked again (the plan's limits count it).
            async with self.db.uow(user_id) as uow:
                earlier = await _made_with(uow, user_id, idempotency)
            if earlier is not None:
                return earlier, True
        limits = await self.entitlements.limits(user_id)
        model_id, training_id = uuid.uuid4(), uuid.uuid4()
        async with self.db.uow(user_id) as uow:
            await uow.session.execute(
                sa.text("SELECT pg_advisory_xact_lock(hashtext('models:' || :u))"), {"u": user_id}
            )
            if idempotency is not None:
                # A concurrent duplicate waited on the lock above for its twin to commit.
                earlier = await _made_with(uow, user_id, idempotency)
                if earlier is not None:
                    return earlier, True
            await refuse_while_erasing(uow)
            found = {
                r.id: r.status
                for r in await uow.session.execute(
                    sa.text("SELECT id, status FROM photos WHERE id = ANY(:ids) FOR SHARE"),
                    {"ids": ids},
                )
            }
            for pid in ids:
                if pid not in found:
                    raise NotFound(f"no photo {pid}", code="photo_not_found")
            for pid in ids:
                if found[pid] not in ("accepted", "accepted_with_warnings"):
                    raise Conflict(
                        f"photo {pid} is {found[pid]}; only accepted photos train a model",
                        code="photo_not_accepted",
                    )
            counts = (
                await uow.session.execute(
                    sa.text(
                        "SELECT count(*) FILTER (WHERE status <> ALL(:ended)) AS running, "
                        "count(*) FILTER (WHERE status <> ALL(:not_kept)) AS kept "
                        "FROM models WHERE deleted_at IS NULL"
                    ),
                    {
                        "ended": sorted(s.value for s in domain.TERMINAL),
                        "not_kept": sorted(s.value for s in domain.NOT_KEPT),
                    },
                )
            ).one()
            if counts.running >= limits.max_concurrent_trainings:
                raise Conflict(
                    f"your plan trains {limits.max_concurrent_trainings} model(s) at a time; "
                    "wait for the running training or upgrade",
                    code="training_limit_reached",
                )
            if counts.kept >= limits.max_stored_models:
                raise Conflict(
                    f"your plan keeps {limits.max_stored_models} model(s); delete one or upgrade",
                    code="model_limit_reached",
                )
            await uow.session.execute(
                sa.text(
                    "INSERT INTO models (id, user_id, name, status, preset, trigger_word, "
                    "training_id, photo_ids, work, work_after, idempotency_key, "
                    "request_fingerprint) VALUES (:id, :u, :name, 'awaiting_credits', :preset, "
                    ":word, :tid, :photos, 'ask_credits', now() + make_interval(secs => :ask_again), "
                    ":key, :fp)"
                ),
                {
                    "id": model_id,
                    "u": user_id,
                    "name": name,
                    "preset": chosen.name,
                    "word": word,
                    "tid": training_id,
                    "photos": ids,
                    "key": idempotency.key if idempotency else None,
                    "fp": idempotency.fingerprint if idempotency else None,
                    # Until billing answers, the row is its own reminder (jobs.step_ask_credits).
                    "ask_again": self.credits_ask_again_s,
                },
            )
            uow.emit(
                TrainingRequestedV1(
                    user_id=user_id, training_id=training_id, model_id=model_id, preset=chosen.name
                )
            )
            await uow.commit()
        log.info("training.requested", model_id=str(model_id), preset=chosen.name, photos=len(ids))
        return await self.get(user_id, str(model_id)), False

    async def get(self, user_id: str, model_id: str) -> ModelRecord:
        mid = parse_id(model_id, "model")
        async with self.db.uow(user_id) as uow:
            model = await load(uow, mid, lock=False)
        if model is None or model.deleted_at is not None:
            raise NotFound(f"no model {model_id}", code="model_not_found")
        return model

    async def page(self, user_id: str, requested: int, token: str) -> tuple[list[ModelRecord], str]:
        limit = page_size(requested)
        after = decode_cursor(token)
        where = "WHERE deleted_at IS NULL"
        params: dict[str, Any] = {"limit": limit + 1}
        if after is not None:
            where += " AND (created_at, id) < (:at, :id)"
            params |= {"at": after[0], "id": after[1]}
        async with self.db.uow(user_id) as uow:
            rows = (
                await uow.session.execute(
                    sa.text(f"{SELECT} {where} ORDER BY created_at DESC, id DESC LIMIT :limit"),
                    params,
                )
            ).all()
        models = [record(r) for r in rows]
        more = len(models) > limit
        models = models[:limit]
        token_out = encode_cursor(models[-1].created_at, models[-1].id) if more else ""
        return models, token_out

    async def rename(self, user_id: str, model_id: str, name: str) -> ModelRecord:
        name = _checked_name(name)
        mid = parse_id(model_id, "model")
        async with self.db.uow(user_id) as uow:
            model = await load(uow, mid)
            if model is None or model.deleted_at is not None:
                raise NotFound(f"no model {model_id}", code="model_not_found")
            await save(uow, model, name=name)
            await uow.commit()
        return model

    async def cancel(self, user_id: str, model_id: str) -> ModelRecord:
        mid = parse_id(model_id, "model")
        async with self.db.uow(user_id) as uow:
            model = await load(uow, mid)
            if model is None or model.deleted_at is not None:
                raise NotFound(f"no model {model_id}", code="model_not_found")
            if model.state.terminal:
                raise Conflict(f"the training is already {model.status}", code="model_finished")
            await cancel(uow, model, "canceled_by_user")
            await uow.commit()
        return model

    async def delete(self, user_id: str, model_id: str) -> None:
        """Gone from the API at once; the purge (provider model and versions, our objects,
        the row) runs in the background with retries."""
        mid = parse_id(model_id, "model")
        async with self.db.uow(user_id) as uow:
            model = await load(uow, mid)
            if model is None or model.deleted_at is not None:
                raise NotFound(f"no model {model_id}", code="model_not_found")
            await schedule_purge(uow, model, "deleted")
            await uow.commit()
        log.info("training.model_deleted", model_id=str(mid))


def _checked_name(name: str) -> str:
    name = (name or "").strip()
    if not 1 <= len(name) <= 80:
        raise InvalidArgument("name must be 1-80 characters", code="name_invalid")
    return name
