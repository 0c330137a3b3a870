"""Use cases of the prompts service: PreparePrompt, EnhancePrompt and the style packs.

The rules are the domain's (:mod:`visiona.prompts.domain`), the LLM is reached through the
port (:mod:`visiona.prompts.providers`), every statement is the repository's; this module
orders them, with the LLM call always outside a transaction.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import KW_ONLY, dataclass
from datetime import UTC, datetime, timedelta
from typing import NoReturn

from visiona.kit import errors
from visiona.kit.db import Database, UnitOfWork
from visiona.kit.events import PromptEnhancementCreatedV1
from visiona.kit.logging import get_logger
from visiona.prompts.domain import judge
from visiona.prompts.domain.moderation import (
    ModerationDecision,
    check_rules,
    refusal_error,
)
from visiona.prompts.domain.prompt import (
    SUBJECT,
    Enhancement,
    PreparedPrompt,
    StylePack,
    apply_template,
    check_trigger_word,
    clean_prompt,
)
from visiona.prompts.providers import LanguageModel, LLMError, LLMFailure
from visiona.prompts.repository import (
    EnhancementRepository,
    ModerationDecisionRepository,
    PromptCacheRepository,
    StylePackRepository,
)

log = get_logger(__name__)


@dataclass(eq=False)
class PromptsService:
    db: Database
    llm: LanguageModel
    _: KW_ONLY
    max_tokens: int = 400
    judge_max_tokens: int = 60
    cache_ttl: timedelta = timedelta(hours=24)

    async def enhance_prompt(self, user_id: str, prompt: str) -> Enhancement:
        """Ask the LLM for a richer prompt, then store it and its event in one transaction.

        Moderated as a prompt to generate is, and refused the same way (``prompt_refused``,
        the decision kept for the user): the rule layer first (a clear violation makes no
        LLM call), then one LLM call that judges under the same policy and rewrites, whose
        answer :func:`judge.refusal_of` reads as on the generation path (so a rewrite the
        rules would refuse is refused too). With no judgement there is nothing to return:
        the LLM's failure is the answer, with its own status. The LLM call happens before
        the transaction opens: no connection is held while it runs.
        """
        text = clean_prompt(prompt)
        verdict = check_rules(text)
        if verdict is not None:
            await self._refuse_enhancement(user_id, text, "rules", verdict.category)
        try:
            completion = await self.llm.complete(
                system=judge.ENHANCE_SYSTEM,
                user=judge.moderation_request(text),
                max_tokens=self.max_tokens,
                json_answer=True,
            )
        except LLMError as exc:
            raise _enhancer_failed(exc) from exc
        answer = judge.parse_judgement(completion.text, trigger_word=None, rewrite=True)
        refusal = judge.refusal_of(completion, answer)
        if refusal is not None:
            await self._refuse_enhancement(user_id, text, refusal.source, refusal.category)
        if answer is None or not answer.prompt:
            raise errors.Unavailable(
                "the prompt enhancer gave no usable answer; try again shortly",
                code="llm_empty_answer",
            )
        async with self.db.uow(user_id) as uow:
            stored = await self._store_enhancement(uow, user_id, text, answer.prompt, completion)
            await uow.commit()
        return stored

    async def _refuse_enhancement(
        self, user_id: str, text: str, source: str, category: str
    ) -> NoReturn:
        async with self.db.uow(user_id) as uow:
            refused = await self._refuse(uow, text, None, source, category)
        raise refusal_error(refused)

    async def list_style_packs(self) -> list[StylePack]:
        async with self.db.uow() as uow:
            return await StylePackRepository(uow.session).list()

    async def prepare_prompt(
        self,
        user_id: str,
        prompt: str,
        trigger_word: str,
        style_pack: str,
        enhance: bool,
        *,
        time_left_s: float | None = None,
    ) -> PreparedPrompt:
        """The final prompt for the image model, or a refusal; see PreparePrompt in the proto.

        Order: input checks, the rule layer (a clear violation is refused without the LLM),
        the cache, then one LLM call (judge and rewrite, or judge only). An LLM that cannot
        answer makes the answer degraded, never an error; so does one that cannot answer
        within the caller's deadline (``time_left_s``), which would otherwise turn the
        degraded answer into DEADLINE_EXCEEDED. The LLM call runs between two short
        transactions, holding no connection.
        """
        started = time.monotonic()
        text = clean_prompt(prompt, code="prompt_invalid")
        word = check_trigger_word(trigger_word)
        pack_id = style_pack.strip() or None
        key_args = {"provider": self.llm.provider, "model": self.llm.model}
        verdict = check_rules(text)
        async with self.db.uow(user_id) as uow:
            pack = await StylePackRepository(uow.session).get(pack_id) if pack_id else None
            if pack_id and pack is None:
                raise errors.NotFound(
                    f"no style pack named {pack_id!r}", code="style_pack_not_found"
                )
            if verdict is not None:
                return await self._refuse(uow, text, pack_id, "rules", verdict.category)
            key = judge.cache_key(
                prompt=text, trigger_word=word, pack=pack, enhance=enhance, **key_args
            )
            cached = await PromptCacheRepository(uow.session).get(user_id, key)
            if cached is not None and not cached.judgement.allowed:
                return await self._refuse(
                    uow, text, pack_id, "llm", cached.judgement.category, from_cache=True
                )
        template = pack.template_for(text, word) if pack else SUBJECT
        draft = apply_template(template, text, word)

        if cached is not None:
            if enhance and cached.judgement.prompt:
                return PreparedPrompt(
                    prompt=cached.judgement.prompt,
                    enhanced=True,
                    reason=cached.judgement.reason,
                    enhancement_id=cached.enhancement_id,
                )
            return PreparedPrompt(prompt=draft)

        budget = None
        if time_left_s is not None:
            left = time_left_s - (time.monotonic() - started)
            # Room kept for the transaction after the call, and the answer's way back.
            budget = left - min(1.0, left / 4)
            if budget <= 0:
                return self._degraded(draft, "no_time_left", None)
        try:
            async with asyncio.timeout(budget):
                completion = await self._ask(text, word, pack, draft, enhance)
        except LLMError as exc:
            # Whatever the failure: generating from the user's own prompt beats no image.
            return self._degraded(draft, exc.error_type, exc.status)
        except TimeoutError:
            return self._degraded(draft, "caller_deadline", None)
        answer = judge.parse_judgement(completion.text, trigger_word=word, rewrite=enhance)
        refusal = judge.refusal_of(completion, answer)
        if refusal is not None:
            async with self.db.uow(user_id) as uow:
                # Only the judge's own verdict is cached: the others are no judgement.
                return await self._refuse(
                    uow,
                    text,
                    pack_id,
                    refusal.source,
                    refusal.category,
                    cache=(key, answer) if refusal.source == "llm" and answer else None,
                )
        if answer is None:
            return self._degraded(draft, "unusable_answer", None)

        async with self.db.uow(user_id) as uow:
            enhancement = None
            if enhance and answer.prompt:
                enhancement = await self._store_enhancement(
                    uow, user_id, text, answer.prompt, completion
                )
            await PromptCacheRepository(uow.session).put(
                user_id=user_id,
                key=key,
                judgement=answer,
                enhancement_id=enhancement.id if enhancement else None,
                ttl=self.cache_ttl,
                **key_args,
            )
            await uow.commit()
        if enhancement is not None:
            return PreparedPrompt(
                prompt=answer.prompt,
                enhanced=True,
                reason=answer.reason,
                enhancement_id=enhancement.id,
            )
        return PreparedPrompt(prompt=draft)

    async def _ask(
        self, text: str, word: str, pack: StylePack | None, draft: str, enhance: bool
    ) -> judge.Completion:
        if enhance:
            return await self.llm.complete(
                system=judge.REWRITE_SYSTEM,
                user=judge.rewrite_request(text, word, pack, draft),
                max_tokens=self.max_tokens,
                json_answer=True,
            )
        return await self.llm.complete(
            system=judge.MODERATION_SYSTEM,
            user=judge.moderation_request(text),
            max_tokens=self.judge_max_tokens,
            json_answer=True,
        )

    async def _store_enhancement(
        self,
        uow: UnitOfWork,
        user_id: str,
        prompt: str,
        enhanced: str,
        completion: judge.Completion,
    ) -> Enhancement:
        stored = await EnhancementRepository(uow.session).add(
            Enhancement(
                id=uuid.uuid4(),
                user_id=user_id,
                prompt=prompt,
                enhanced_prompt=enhanced,
                model=completion.model,
                input_tokens=completion.input_tokens,
                output_tokens=completion.output_tokens,
                created_at=datetime.now(UTC),
            )
        )
        uow.emit(
            PromptEnhancementCreatedV1(
                user_id=user_id,
                enhancement_id=stored.id,
                model=stored.model,
                input_tokens=stored.input_tokens,
                output_tokens=stored.output_tokens,
            )
        )
        return stored

    async def _refuse(
        self,
        uow: UnitOfWork,
        prompt: str,
        pack_id: str | None,
        source: str,
        category: str | None,
        *,
        from_cache: bool = False,
        cache: tuple[str, judge.Judgement] | None = None,
    ) -> PreparedPrompt:
        """Keep the refusal for its user (and cache the LLM's verdict), commit, answer."""
        assert uow.user_id is not None
        decision = ModerationDecision.refusal(
            user_id=uow.user_id,
            prompt=prompt,
            style_pack=pack_id,
            source=source,
            category=category,
            provider=self.llm.provider,
            model=self.llm.model,
            from_cache=from_cache,
        )
        await ModerationDecisionRepository(uow.session).add(decision)
        if cache is not None:
            key, verdict = cache
            await PromptCacheRepository(uow.session).put(
                user_id=uow.user_id,
                key=key,
                provider=self.llm.provider,
                model=self.llm.model,
                judgement=verdict,
                enhancement_id=None,
                ttl=self.cache_ttl,
            )
        await uow.commit()
        log.info("prompt.refused", source=source, category=decision.category, from_cache=from_cache)
        return decision.answer()

    def _degraded(self, draft: str, error_type: str, status: int | None) -> PreparedPrompt:
        # Never the prompt: only why the LLM's judgement is missing.
        log.warning(
            "prompt.degraded", provider=self.llm.provider, error_type=error_type, status=status
        )
        return PreparedPrompt(prompt=draft, degraded=True)


# What a failed LLM means to someone waiting for an enhancement (providers.LLMFailure).
_ENHANCER_FAILURES: dict[LLMFailure, tuple[type[errors.DomainError], str, str]] = {
    LLMFailure.UNAVAILABLE: (
        errors.Unavailable,
        "llm_unavailable",
        "the prompt enhancer is unavailable; try again shortly",
    ),
    LLMFailure.RATE_LIMITED: (
        errors.ResourceExhausted,
        "llm_rate_limited",
        "the prompt enhancer is busy; try again in a minute",
    ),
    LLMFailure.REJECTED: (
        errors.InvalidArgument,
        "llm_rejected_prompt",
        "the language model refused this prompt as a request; rephrase it",
    ),
    LLMFailure.NOT_CONFIGURED: (
        errors.FailedPrecondition,
        "llm_not_configured",
        "the prompt enhancer is not available: the language model refused our credentials",
    ),
}


def _enhancer_failed(exc: LLMError) -> errors.DomainError:
    kind, code, message = _ENHANCER_FAILURES[exc.failure]
    return kind(message, code=code)
