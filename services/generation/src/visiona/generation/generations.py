"""Generations: the stored record, its transitions, and the user's use cases.

Every change goes through :func:`load` (``FOR UPDATE``) and :func:`save` in one unit of work,
with its outcome event emitted into the same transaction. Billing captures what the outcome
says was delivered (``GenerationSucceededV1.delivered``) and releases the rest.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from visiona.generation import domain
from visiona.generation.backends import BackendsPort
from visiona.generation.domain import GenerationStatus
from visiona.generation.replicate_api import ProviderPrediction
from visiona.kit.db import Database, UnitOfWork
from visiona.kit.errors import Conflict, InvalidArgument, NotFound
from visiona.kit.events import (
    GenerationCanceledV1,
    GenerationFailedV1,
    GenerationRequestedV1,
    GenerationSucceededV1,
)
from visiona.kit.idempotency import RequestKey
from visiona.kit.logging import get_logger
from visiona.kit.owners import owner_key
from visiona.kit.paging import decode_cursor, encode_cursor, page_size, parse_id
from visiona.kit.rows import RowStore

log = get_logger(__name__)


@dataclass
class GenerationRecord:
    id: uuid.UUID
    user_id: str
    model_id: uuid.UUID
    version: str
    prompt: str
    final_prompt: str
    enhanced: bool
    degraded: bool
    enhancement_reason: str | None
    style_pack: str | None
    num_outputs: int
    aspect_ratio: str
    seed: int | None
    lora_scale: float
    output_format: str
    status: str
    hold_id: uuid.UUID | None
    provider_prediction_id: str | None
    provider_status: str | None
    launch_attempted_at: datetime | None
    output_urls: list[str]
    delivered: int
    failure_reason: str | None
    failure_message: str | None
    work: str | None
    work_after: datetime | None
    work_attempts: int
    lease_until: datetime | None
    provider_seen_at: datetime | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime

    @property
    def state(self) -> GenerationStatus:
        return GenerationStatus(self.status)

    @property
    def provider_running(self) -> bool:
        return domain.provider_running(
            self.provider_prediction_id, self.launch_attempted_at, self.provider_status
        )


ROWS = RowStore("generations", GenerationRecord)
SELECT = ROWS.select
record = ROWS.record
save = ROWS.save


async def load(uow: UnitOfWork, gen_id: uuid.UUID, *, lock: bool = True) -> GenerationRecord | None:
    return await ROWS.load(uow, gen_id, lock=lock)


def _now() -> datetime:
    return datetime.now(UTC)


def _stop_work(gen: GenerationRecord) -> dict[str, Any]:
    if gen.provider_running:
        return {"work": "cancel", "work_after": _now(), "work_attempts": 0}
    return {"work": None, "work_after": None}


async def fail(uow: UnitOfWork, gen: GenerationRecord, reason: str, message: str) -> bool:
    """End without images (beyond those already stored, which are paid for)."""
    if gen.state.terminal:
        return False
    await save(
        uow,
        gen,
        status=GenerationStatus.FAILED.value,
        failure_reason=reason,
        failure_message=message[:500],
        finished_at=_now(),
        **_stop_work(gen),
    )
    uow.emit(
        GenerationFailedV1(
            user_id=gen.user_id, generation_id=gen.id, reason=reason, delivered=gen.delivered
        )
    )
    log.info("generation.failed", generation_id=str(gen.id), reason=reason)
    return True


async def cancel(uow: UnitOfWork, gen: GenerationRecord, reason: str) -> bool:
    if gen.state.terminal:
        return False
    await save(
        uow,
        gen,
        status=GenerationStatus.CANCELED.value,
        failure_reason=reason,
        failure_message=None,
        finished_at=_now(),
        **_stop_work(gen),
    )
    uow.emit(
        GenerationCanceledV1(
            user_id=gen.user_id, generation_id=gen.id, reason=reason, delivered=gen.delivered
        )
    )
    log.info("generation.canceled", generation_id=str(gen.id), reason=reason)
    return True


async def finish(uow: UnitOfWork, gen: GenerationRecord, delivered: int) -> bool:
    """Every output that could be stored is: succeeded with ``delivered`` images (billing
    captures those), or failed when none could be (billing releases everything)."""
    if gen.state.terminal:
        return False
    if domain.outcome_of_ingest(delivered) is GenerationStatus.FAILED:
        await save(uow, gen, delivered=0)
        return await fail(
            uow, gen, "outputs_unavailable", "no image could be copied from the provider"
        )
    await save(
        uow,
        gen,
        status=GenerationStatus.SUCCEEDED.value,
        delivered=delivered,
        finished_at=_now(),
        work=None,
        work_after=None,
    )
    uow.emit(
        GenerationSucceededV1(
            user_id=gen.user_id,
            generation_id=gen.id,
            requested=gen.num_outputs,
            delivered=delivered,
        )
    )
    log.info(
        "generation.succeeded",
        generation_id=str(gen.id),
        requested=gen.num_outputs,
        delivered=delivered,
    )
    return True


async def apply_provider(
    uow: UnitOfWork, gen: GenerationRecord, prediction: ProviderPrediction, quiet_s: float
) -> None:
    """Apply what the provider says about the generation's prediction (webhook or poll)."""
    now = _now()
    changes: dict[str, Any] = {"provider_seen_at": now, "provider_status": prediction.status}
    if gen.work == "poll":
        changes["work_after"] = now + timedelta(seconds=quiet_s)
    target = domain.PROVIDER_STATUS.get(prediction.status)
    if gen.state.terminal or target is None:
        await save(uow, gen, **changes)
        return
    if target in (GenerationStatus.QUEUED, GenerationStatus.RUNNING):
        if domain.can_advance(gen.state, target):
            changes["status"] = target.value
            if target is GenerationStatus.RUNNING and gen.started_at is None:
                changes["started_at"] = now
        await save(uow, gen, **changes)
    elif target is GenerationStatus.SUCCEEDED:
        if gen.started_at is None:
            changes["started_at"] = now
        if domain.can_advance(gen.state, GenerationStatus.RUNNING):
            changes["status"] = GenerationStatus.RUNNING.value
        if gen.work not in ("ingest", "cancel"):
            changes |= {"work": "ingest", "work_after": now, "work_attempts": 0}
        changes["output_urls"] = domain.outputs_to_ingest(prediction.outputs, gen.num_outputs)
        await save(uow, gen, **changes)
    elif target is GenerationStatus.FAILED:
        await save(uow, gen, **changes)
        await fail(
            uow,
            gen,
            domain.provider_failure_reason(prediction.error),
            prediction.error or "the image model failed",
        )
    else:
        await save(uow, gen, **changes)
        await cancel(uow, gen, "provider_canceled")


async def _made_with(uow: UnitOfWork, user_id: str, key: RequestKey) -> GenerationRecord | None:
    """The generation the user's idempotency key made, if any; refused when that key came
    with a different request."""
    row = (
        await uow.session.execute(
            sa.text(
                "SELECT id, request_fingerprint FROM generations "
                "WHERE user_id = :u AND idempotency_key = :k"
            ),
            {"u": user_id, "k": key.key},
        )
    ).first()
    if row is None:
        return None
    key.check(row.request_fingerprint)
    return await load(uow, row.id, lock=False)


def credits_requested(gen: GenerationRecord) -> GenerationRequestedV1:
    """The generation's request to billing, asked again (a new event, the same generation):
    billing holds once per generation and answers a repeated request the same."""
    return GenerationRequestedV1(
        user_id=gen.user_id,
        generation_id=gen.id,
        model_id=gen.model_id,
        num_outputs=gen.num_outputs,
    )


class GenerationService:
    def __init__(
        self, db: Database, backends: BackendsPort, *, credits_ask_again_s: float = 60.0
    ) -> None:
        self.db = db
        self.backends = backends
        self.credits_ask_again_s = credits_ask_again_s

    async def create(
        self,
        user_id: str,
        *,
        model_id: str,
        prompt: str,
        enhance: bool,
        style_pack: str | None,
        num_outputs: int,
        aspect_ratio: str | None,
        seed: int | None,
        lora_scale: float | None,
        output_format: str | None,
        idempotency: RequestKey | None = None,
    ) -> tuple[GenerationRecord, bool]:
        """Request a generation; with an idempotency key, the generation that key already
        made, as it stands now, if there is one (ADR 0009). Also says whether the answer is
        that earlier generation (a replay)."""
        req = domain.check_request(
            model_id=model_id,
            prompt=prompt,
            enhance=enhance,
            style_pack=style_pack,
            num_outputs=num_outputs,
            aspect_ratio=aspect_ratio,
            seed=seed,
            lora_scale=lora_scale,
            output_format=output_format,
        )
        parse_id(model_id, "model")
        if idempotency is not None:
            # A retry whose first attempt committed (its answer lost on the way) gets that
            # generation before anything it changed is checked again (the plan's limit counts
            # it) and before the LLM is asked again.
            async with self.db.uow(user_id) as uow:
                earlier = await _made_with(uow, user_id, idempotency)
            if earlier is not None:
                return earlier, True
        model = await self.backends.ready_model(user_id, model_id)
        limit = await self.backends.max_concurrent_generations(user_id)
        prepared = await self.backends.prepare_prompt(
            user_id,
            prompt=req.prompt,
            trigger_word=model.trigger_word,
            style_pack=req.style_pack,
            enhance=req.enhance,
        )
        if prepared.refused:
            log.info("generation.prompt_refused", reason=prepared.refusal_reason)
            raise InvalidArgument(
                prepared.refusal_message or "this prompt cannot be generated",
                code="prompt_refused",
            )
        gen_id = uuid.uuid4()
        async with self.db.uow(user_id) as uow:
            await uow.session.execute(
                sa.text("SELECT pg_advisory_xact_lock(hashtext('generations:' || :u))"),
                {"u": user_id},
            )
            if idempotency is not None:
                # A concurrent duplicate waited on the lock above for its twin to commit.
                earlier = await _made_with(uow, user_id, idempotency)
                if earlier is not None:
                    return earlier, True
            running = (
                await uow.session.execute(
                    sa.text(
                        "SELECT count(*) FROM generations WHERE status NOT IN "
                        "('succeeded', 'failed', 'canceled')"
                    )
                )
            ).scalar_one()
            if running >= limit:
                raise Conflict(
                    f"your plan runs {limit} generation(s) at a time; wait for one to finish "
                    "or upgrade",
                    code="generation_limit_reached",
                )
            # The user's storage owner key (visiona.kit.owners) exists from their first
            # generation on, before anything is stored under it.
            await owner_key(uow, user_id)
            await uow.session.execute(
                sa.text(
                    "INSERT INTO generations (id, user_id, model_id, version, prompt, "
                    "final_prompt, enhanced, degraded, enhancement_reason, style_pack, "
                    "num_outputs, aspect_ratio, seed, lora_scale, output_format, status, work, "
                    "work_after, idempotency_key, request_fingerprint) VALUES "
                    "(:id, :u, :model, :version, :prompt, :final, :enhanced, :degraded, :reason, "
                    ":pack, :n, :ratio, :seed, :scale, :fmt, 'awaiting_credits', 'ask_credits', "
                    "now() + make_interval(secs => :ask_again), :key, :fp)"
                ),
                {
                    "id": gen_id,
                    "u": user_id,
                    "model": uuid.UUID(model.id),
                    "version": model.version,
                    "prompt": req.prompt,
                    "final": prepared.prompt,
                    "enhanced": prepared.enhanced,
                    "degraded": prepared.degraded,
                    "reason": prepared.reason or None,
                    "pack": req.style_pack,
                    "n": req.num_outputs,
                    "ratio": req.aspect_ratio,
                    "seed": req.seed,
                    "scale": req.lora_scale,
                    "fmt": req.output_format,
                    "key": idempotency.key if idempotency else None,
                    "fp": idempotency.fingerprint if idempotency else None,
                    # Until billing answers, the row is its own reminder (jobs.step_ask_credits).
                    "ask_again": self.credits_ask_again_s,
                },
            )
            uow.emit(
                GenerationRequestedV1(
                    user_id=user_id,
                    generation_id=gen_id,
                    model_id=uuid.UUID(model.id),
                    num_outputs=req.num_outputs,
                )
            )
            await uow.commit()
        log.info(
            "generation.requested",
            generation_id=str(gen_id),
            num_outputs=req.num_outputs,
            enhanced=prepared.enhanced,
            degraded=prepared.degraded,
        )
        return await self.get(user_id, str(gen_id)), False

    async def get(self, user_id: str, gen_id: str) -> GenerationRecord:
        gid = parse_id(gen_id, "generation")
        async with self.db.uow(user_id) as uow:
            gen = await load(uow, gid, lock=False)
        if gen is None:
            raise NotFound(f"no generation {gen_id}", code="generation_not_found")
        return gen

    async def page(
        self, user_id: str, requested: int, token: str
    ) -> tuple[list[GenerationRecord], str]:
        limit = page_size(requested)
        after = decode_cursor(token)
        where = ""
        params: dict[str, Any] = {"limit": limit + 1}
        if after is not None:
            where = "WHERE (created_at, id) < (:at, :id)"
            params |= {"at": after[0], "id": after[1]}
        async with self.db.uow(user_id) as uow:
            rows = (
                await uow.session.execute(
                    sa.text(f"{SELECT} {where} ORDER BY created_at DESC, id DESC LIMIT :limit"),
                    params,
                )
            ).all()
        gens = [record(r) for r in rows]
        more = len(gens) > limit
        gens = gens[:limit]
        return gens, encode_cursor(gens[-1].created_at, gens[-1].id) if more else ""

    async def cancel(self, user_id: str, gen_id: str) -> GenerationRecord:
        gid = parse_id(gen_id, "generation")
        async with self.db.uow(user_id) as uow:
            gen = await load(uow, gid)
            if gen is None:
                raise NotFound(f"no generation {gen_id}", code="generation_not_found")
            if gen.state.terminal:
                raise Conflict(
                    f"the generation is already {gen.status}", code="generation_finished"
                )
            await cancel(uow, gen, "canceled_by_user")
            await uow.commit()
        return gen
