"""The ``models`` table: the :class:`~visiona.training.domain.model.Model` aggregate loaded and
saved, and the queries the use cases and the background work run on it.

Every change to a model goes through :func:`load` (``FOR UPDATE``) and :func:`save` in one
unit of work: the columns the aggregate changed are written in one UPDATE and the events it
raised are emitted into the same transaction (the outbox). Transitions are monotonic
(:func:`visiona.training.domain.model.can_advance`): billing's answer, webhooks, the
reconciler and the user can race, and the first to reach a final status wins.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from visiona.kit.db import UnitOfWork
from visiona.kit.idempotency import RequestKey
from visiona.kit.logging import get_logger
from visiona.kit.paging import Keyset
from visiona.kit.rows import RowStore, lock_row, lock_user_scope, set_moved_keys
from visiona.training.domain.model import NOT_KEPT, TERMINAL, Model, ModelStatus

log = get_logger(__name__)

ROWS = RowStore("models", Model)
load = ROWS.load


async def load_by_training(uow: UnitOfWork, training_id: uuid.UUID) -> Model | None:
    return await ROWS.load(uow, training_id, by="training_id")


async def load_all(uow: UnitOfWork) -> list[Model]:
    """Every model of the unit of work's user, locked."""
    rows = await uow.session.execute(sa.text(f"{ROWS.select} FOR UPDATE"))
    return [ROWS.record(r) for r in rows]


async def save(uow: UnitOfWork, model: Model) -> None:
    """Write what the model's transitions changed (one UPDATE) and emit the events they raised
    (the same transaction)."""
    changes = model.pull_changes()
    await ROWS.save(uow, model, **changes)
    for event in model.pull_events():
        uow.emit(event)
    if "status" in changes:
        _log_outcome(model)


def _log_outcome(model: Model) -> None:
    ids = {"model_id": str(model.id)}
    match model.state:
        case ModelStatus.FAILED:
            log.info("training.failed", **ids, reason=model.failure_reason)
        case ModelStatus.CANCELED:
            log.info("training.canceled", **ids, reason=model.failure_reason)
        case ModelStatus.SUCCEEDED:
            log.info("training.model_ready", **ids, version=model.version)
        case ModelStatus.UNAVAILABLE:
            log.info("training.model_unavailable", **ids, reason=model.failure_reason)


async def lock_user(uow: UnitOfWork, user_id: str) -> None:
    """One model creation per user at a time (the plan's limits count what is committed)."""
    await lock_user_scope(uow, "models", user_id)


async def made_with(uow: UnitOfWork, user_id: str, key: RequestKey | None) -> Model | None:
    """The model the user's idempotency key made, if any (refused for another request)."""
    return await ROWS.made_with(uow, user_id, key)


async def running_and_kept(uow: UnitOfWork) -> tuple[int, int]:
    """How many of the user's models are training, and how many their plan counts as kept."""
    counts = (
        await uow.session.execute(
            sa.text(
                "SELECT count(*) FILTER (WHERE status <> ALL(:ended)) AS running, "
                "count(*) FILTER (WHERE status <> ALL(:not_kept)) AS kept "
                "FROM models WHERE deleted_at IS NULL"
            ),
            {
                "ended": sorted(s.value for s in TERMINAL),
                "not_kept": sorted(s.value for s in NOT_KEPT),
            },
        )
    ).one()
    return counts.running, counts.kept


async def insert(
    uow: UnitOfWork,
    *,
    model_id: uuid.UUID,
    user_id: str,
    name: str,
    preset: str,
    trigger_word: str,
    training_id: uuid.UUID,
    photo_ids: list[uuid.UUID],
    idempotency_key: str | None,
    request_fingerprint: bytes | None,
    ask_again_s: float,
) -> None:
    """A new model awaiting billing's credits; until billing answers, the row is its own
    reminder (``ask_credits``: visiona.training.jobs.model)."""
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
            "preset": preset,
            "word": trigger_word,
            "tid": training_id,
            "photos": photo_ids,
            "key": idempotency_key,
            "fp": request_fingerprint,
            "ask_again": ask_again_s,
        },
    )


async def page(uow: UnitOfWork, keyset: Keyset) -> list[Model]:
    """A page of the user's models (not deleted), newest first."""
    return await ROWS.page(uow, keyset, where=["deleted_at IS NULL"])


async def delete_purged(uow: UnitOfWork, model_id: uuid.UUID) -> None:
    """The row of a deleted model, once the purge removed everything else."""
    await uow.session.execute(
        sa.text("DELETE FROM models WHERE id = :id AND deleted_at IS NOT NULL"), {"id": model_id}
    )


async def uses_photo_in(uow: UnitOfWork, photo_id: uuid.UUID, states: list[str]) -> bool:
    """Whether a model not deleted and in one of ``states`` was made from the photo."""
    found = await uow.session.execute(
        sa.text(
            "SELECT 1 FROM models WHERE :id = ANY(photo_ids) AND deleted_at IS NULL "
            "AND status = ANY(:states) LIMIT 1"
        ),
        {"id": photo_id, "states": states},
    )
    return found.first() is not None


async def any_preparing(uow: UnitOfWork) -> bool:
    """Whether one of the user's models builds its dataset from their photos now."""
    found = await uow.session.execute(
        sa.text(
            "SELECT EXISTS (SELECT 1 FROM models WHERE status = 'preparing' AND deleted_at IS NULL)"
        )
    )
    return bool(found.scalar())


# -- retention (visiona.training.jobs.retention) -------------------------------------------------

# R ago; ``:keep`` is the retention in seconds.
CUTOFF = "now() - make_interval(secs => :keep)"

_DUE_DATASETS = (
    "SELECT id, user_id, finished_at AS at FROM models "
    "WHERE dataset_purged_at IS NULL AND finished_at IS NOT NULL AND deleted_at IS NULL "
    f"AND finished_at < {CUTOFF} {{after}} ORDER BY finished_at, id LIMIT :n"
)
_LOCK_DATASET = (
    f"{ROWS.select} WHERE id = :id AND dataset_purged_at IS NULL AND deleted_at IS NULL "
    f"AND status = ANY(:ended) AND finished_at < {CUTOFF} FOR UPDATE SKIP LOCKED"
)


async def due_datasets(
    uow: UnitOfWork, params: dict[str, Any], after: tuple[datetime, uuid.UUID] | None
) -> list[Any]:
    """``(id, user_id, at)`` of the models whose dataset the retention has made due, across
    users, in ``(finished_at, id)`` order after ``after``; ``params`` has ``keep`` and ``n``."""
    return await due_after(uow, _DUE_DATASETS, "finished_at, id", params, after)


async def due_after(
    uow: UnitOfWork,
    query: str,
    keyset: str,
    params: dict[str, Any],
    after: tuple[datetime, uuid.UUID] | None,
) -> list[Any]:
    clause = ""
    values = dict(params)
    if after is not None:
        clause = f"AND ({keyset}) > (:after_at, :after_id)"
        values |= {"after_at": after[0], "after_id": after[1]}
    return list((await uow.session.execute(sa.text(query.format(after=clause)), values)).all())


async def lock_due_dataset(
    uow: UnitOfWork, model_id: uuid.UUID, params: dict[str, Any]
) -> Model | None:
    """The model, locked, if its dataset is still due (``keep``, ``ended``) and no other
    replica or request holds it (``SKIP LOCKED``)."""
    row = (await uow.session.execute(sa.text(_LOCK_DATASET), {**params, "id": model_id})).first()
    return None if row is None else ROWS.record(row)


# -- keys stored before owner keys (visiona.training.jobs.legacy_keys) --------------------------


async def on_legacy_keys(uow: UnitOfWork, prefixes: dict[str, str]) -> list[uuid.UUID]:
    """The user's models whose dataset or weights are still under ``<top>/<user id>/``."""
    found = await uow.session.execute(
        sa.text(
            "SELECT id FROM models WHERE starts_with(dataset_key, :datasets) "
            "OR starts_with(weights_key, :models)"
        ),
        prefixes,
    )
    return list(found.scalars())


async def lock_keys(uow: UnitOfWork, model_id: uuid.UUID) -> Any:
    """``(work, dataset_key, weights_key)`` of the model, locked; None when it is gone."""
    return await lock_row(uow, "models", model_id, "work, dataset_key, weights_key")


async def set_keys(
    uow: UnitOfWork, model_id: uuid.UUID, dataset_key: str | None, weights_key: str | None
) -> None:
    """Point the model at moved objects (a ``None`` key stays as it is)."""
    await set_moved_keys(uow, "models", model_id, dataset_key=dataset_key, weights_key=weights_key)
