"""Models: the user's use cases (request a training, list, get, rename, cancel, delete).

The rules are the :class:`~visiona.training.domain.model.Model` aggregate's; every change goes
through the repository's ``load`` (``FOR UPDATE``) and ``save`` in one unit of work, with the
events the model raised emitted into the same transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from visiona.kit.db import Database, UnitOfWork
from visiona.kit.errors import Conflict, InvalidArgument, NotFound
from visiona.kit.events import TrainingRequestedV1
from visiona.kit.idempotency import RequestKey
from visiona.kit.logging import get_logger
from visiona.kit.paging import Keyset, parse_id
from visiona.kit.rows import made_before
from visiona.training.domain import model as domain
from visiona.training.domain.model import Model, checked_name
from visiona.training.repository import account as account_repo
from visiona.training.repository import model as repo
from visiona.training.repository import photo as photo_repo

log = get_logger(__name__)

# Only these photos train a model.
ACCEPTED = ("accepted", "accepted_with_warnings")


@dataclass(frozen=True)
class Limits:
    max_concurrent_trainings: int
    max_stored_models: int


class EntitlementsPort(Protocol):
    async def limits(self, user_id: str) -> Limits: ...


async def _made_with(uow: UnitOfWork, user_id: str, key: RequestKey | None) -> Model | None:
    """The model the user's idempotency key made, if any; refused when that key came with a
    different request, and gone (as GET says) when the model has been deleted since."""
    model = await repo.made_with(uow, user_id, key)
    if model is not None and not model.visible:
        raise NotFound(
            f"the model {model.id} made with this Idempotency-Key has been deleted",
            code="model_not_found",
        )
    return model


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
    ) -> tuple[Model, bool]:
        """Request a model's training; with an idempotency key, the model that key already
        made, as it stands now, if there is one (ADR 0009). Also says whether the answer is
        that earlier model (a replay)."""
        name = checked_name(name)
        chosen = domain.preset(preset)
        word = domain.trigger_word(trigger_word)
        ids = [parse_id(p, "photo") for p in photo_ids]
        if len(set(ids)) != len(ids):
            raise InvalidArgument("photo_ids has duplicates", code="photo_ids_duplicate")
        domain.check_photo_count(len(ids))
        earlier = await made_before(self.db, user_id, idempotency, _made_with)
        if earlier is not None:
            return earlier, True
        limits = await self.entitlements.limits(user_id)
        model_id, training_id = uuid.uuid4(), uuid.uuid4()
        async with self.db.uow(user_id) as uow:
            await repo.lock_user(uow, user_id)
            # A concurrent duplicate waited on the lock above for its twin to commit.
            earlier = await _made_with(uow, user_id, idempotency)
            if earlier is not None:
                return earlier, True
            await account_repo.refuse_while_erasing(uow)
            found = await photo_repo.statuses_for_share(uow, ids)
            for pid in ids:
                if pid not in found:
                    raise NotFound(f"no photo {pid}", code="photo_not_found")
            for pid in ids:
                if found[pid] not in ACCEPTED:
                    raise Conflict(
                        f"photo {pid} is {found[pid]}; only accepted photos train a model",
                        code="photo_not_accepted",
                    )
            running, kept = await repo.running_and_kept(uow)
            if running >= limits.max_concurrent_trainings:
                raise Conflict(
                    f"your plan trains {limits.max_concurrent_trainings} model(s) at a time; "
                    "wait for the running training or upgrade",
                    code="training_limit_reached",
                )
            if kept >= limits.max_stored_models:
                raise Conflict(
                    f"your plan keeps {limits.max_stored_models} model(s); delete one or upgrade",
                    code="model_limit_reached",
                )
            await repo.insert(
                uow,
                model_id=model_id,
                user_id=user_id,
                name=name,
                preset=chosen.name,
                trigger_word=word,
                training_id=training_id,
                photo_ids=ids,
                idempotency_key=idempotency.key if idempotency else None,
                request_fingerprint=idempotency.fingerprint if idempotency else None,
                ask_again_s=self.credits_ask_again_s,
            )
            uow.emit(
                TrainingRequestedV1(
                    user_id=user_id, training_id=training_id, model_id=model_id, preset=chosen.name
                )
            )
            await uow.commit()
        log.info("training.requested", model_id=str(model_id), preset=chosen.name, photos=len(ids))
        return await self.get(user_id, str(model_id)), False

    async def get(self, user_id: str, model_id: str) -> Model:
        mid = parse_id(model_id, "model")
        async with self.db.uow(user_id) as uow:
            model = await repo.load(uow, mid, lock=False)
        if model is None or not model.visible:
            raise NotFound(f"no model {model_id}", code="model_not_found")
        return model

    async def page(self, user_id: str, requested: int, token: str) -> tuple[list[Model], str]:
        keyset = Keyset.of(requested, token)
        async with self.db.uow(user_id) as uow:
            return keyset.cut(await repo.page(uow, keyset))

    async def _change(self, user_id: str, model_id: str, change: _Change) -> Model:
        """Load the user's model locked, apply ``change``, save and commit."""
        mid = parse_id(model_id, "model")
        async with self.db.uow(user_id) as uow:
            model = await repo.load(uow, mid)
            if model is None or not model.visible:
                raise NotFound(f"no model {model_id}", code="model_not_found")
            change(model, datetime.now(UTC))
            await repo.save(uow, model)
            await uow.commit()
        return model

    async def rename(self, user_id: str, model_id: str, name: str) -> Model:
        name = checked_name(name)
        return await self._change(user_id, model_id, lambda model, _: model.rename(name))

    async def cancel(self, user_id: str, model_id: str) -> Model:
        def cancel(model: Model, now: datetime) -> None:
            if model.state.terminal:
                raise Conflict(f"the training is already {model.status}", code="model_finished")
            model.cancel(now)

        return await self._change(user_id, model_id, cancel)

    async def delete(self, user_id: str, model_id: str) -> None:
        """Gone from the API at once; the purge (provider model and versions, our objects,
        the row) runs in the background with retries."""
        model = await self._change(
            user_id, model_id, lambda model, now: model.schedule_purge("deleted", now)
        )
        log.info("training.model_deleted", model_id=str(model.id))


class _Change(Protocol):
    def __call__(self, model: Model, now: datetime, /) -> object: ...
