"""Generations: what the user asks of them (create, read, list, cancel).

Every change loads the generation (``FOR UPDATE``), calls its transition and saves it in one
unit of work, with the events it raised emitted into the same transaction. Billing captures
what the outcome says was delivered (``GenerationSucceededV1.delivered``) and releases the rest.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from visiona.generation.clients import BackendsPort
from visiona.generation.domain.generation import Generation
from visiona.generation.domain.request import Request
from visiona.generation.repository import generation as generations
from visiona.kit.db import Database
from visiona.kit.errors import Conflict, InvalidArgument, NotFound
from visiona.kit.events import GenerationRequestedV1
from visiona.kit.idempotency import RequestKey
from visiona.kit.logging import get_logger
from visiona.kit.owners import owner_key
from visiona.kit.paging import Keyset, parse_id
from visiona.kit.rows import made_before

log = get_logger(__name__)


class GenerationService:
    def __init__(
        self, db: Database, backends: BackendsPort, *, credits_ask_again_s: float = 60.0
    ) -> None:
        self.db = db
        self.backends = backends
        self.credits_ask_again_s = credits_ask_again_s

    async def create(
        self, user_id: str, req: Request, *, idempotency: RequestKey | None = None
    ) -> tuple[Generation, bool]:
        """Request a generation (``req`` checked by :func:`check_request`); with an
        idempotency key, the generation that key already made, as it stands now, if there is
        one (ADR 0009). Also says whether the answer is that earlier generation (a replay)."""
        parse_id(req.model_id, "model")
        # Before the LLM is asked again, too.
        earlier = await made_before(self.db, user_id, idempotency, generations.made_with)
        if earlier is not None:
            return earlier, True
        model = await self.backends.ready_model(user_id, req.model_id)
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
            await generations.lock_user(uow, user_id)
            # A concurrent duplicate waited on the lock above for its twin to commit.
            earlier = await generations.made_with(uow, user_id, idempotency)
            if earlier is not None:
                return earlier, True
            if await generations.count_unfinished(uow) >= limit:
                raise Conflict(
                    f"your plan runs {limit} generation(s) at a time; wait for one to finish "
                    "or upgrade",
                    code="generation_limit_reached",
                )
            # The user's storage owner key (visiona.kit.owners) exists from their first
            # generation on, before anything is stored under it.
            await owner_key(uow, user_id)
            await generations.insert(
                uow,
                id=gen_id,
                user_id=user_id,
                model_id=uuid.UUID(model.id),
                version=model.version,
                prompt=req.prompt,
                final_prompt=prepared.prompt,
                enhanced=prepared.enhanced,
                degraded=prepared.degraded,
                enhancement_reason=prepared.reason or None,
                style_pack=req.style_pack,
                num_outputs=req.num_outputs,
                aspect_ratio=req.aspect_ratio,
                seed=req.seed,
                lora_scale=req.lora_scale,
                output_format=req.output_format,
                idempotency_key=idempotency.key if idempotency else None,
                request_fingerprint=idempotency.fingerprint if idempotency else None,
                # Until billing answers, the row is its own reminder (jobs' step_ask_credits).
                ask_again_s=self.credits_ask_again_s,
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

    async def get(self, user_id: str, gen_id: str) -> Generation:
        gid = parse_id(gen_id, "generation")
        async with self.db.uow(user_id) as uow:
            gen = await generations.load(uow, gid, lock=False)
        if gen is None:
            raise NotFound(f"no generation {gen_id}", code="generation_not_found")
        return gen

    async def page(self, user_id: str, requested: int, token: str) -> tuple[list[Generation], str]:
        keyset = Keyset.of(requested, token)
        async with self.db.uow(user_id) as uow:
            return keyset.cut(await generations.page(uow, keyset))

    async def cancel(self, user_id: str, gen_id: str) -> Generation:
        gid = parse_id(gen_id, "generation")
        async with self.db.uow(user_id) as uow:
            gen = await generations.load(uow, gid)
            if gen is None:
                raise NotFound(f"no generation {gen_id}", code="generation_not_found")
            if gen.state.terminal:
                raise Conflict(
                    f"the generation is already {gen.status}", code="generation_finished"
                )
            gen.cancel(datetime.now(UTC))
            await generations.save(uow, gen)
            await uow.commit()
        return gen
