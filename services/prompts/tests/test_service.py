"""PreparePrompt and the style packs on a real PostgreSQL, with the LLM reached through the
official SDKs over HTTP: the OpenAI adapter against the OpenAI emulator, the Anthropic adapter
against the Anthropic emulator."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from tests.support.schemas import SchemaDb
from visiona.emulators.anthropic import PROVIDER_REFUSAL_MARKER, REFUSAL_MARKER
from visiona.kit import errors
from visiona.kit.db import Database
from visiona.prompts.config import PromptsSettings
from visiona.prompts.domain.judge import Completion
from visiona.prompts.domain.prompt import MAX_PROMPT_CHARS, contains_word
from visiona.prompts.jobs import sweep_prompt_cache
from visiona.prompts.providers import LLMError, language_model
from visiona.prompts.providers.anthropic import AnthropicLLM
from visiona.prompts.providers.openai import OpenAILLM
from visiona.prompts.service import PromptsService

from .conftest import Emulator

WORD = "vsnkqwrt"
REQUIRED_PACKS = {"headshot", "editorial", "fantasy", "cinematic", "casual"}


def user() -> str:
    return f"user_{uuid.uuid4().hex[:12]}"


def openai_settings(server: Emulator, **changes: Any) -> PromptsSettings:
    values: dict[str, Any] = {
        "llm_provider": "openai",
        "openai_api_key": SecretStr("sk-openai-local"),
        "openai_base_url": f"{server.url}/v1",
        "llm_max_retries": 0,
        "llm_timeout_s": 5.0,
    }
    return PromptsSettings(**(values | changes))


def anthropic_settings(server: Emulator, **changes: Any) -> PromptsSettings:
    values: dict[str, Any] = {
        "anthropic_api_key": SecretStr("sk-ant-local"),
        "anthropic_base_url": server.url,
        "llm_max_retries": 0,
        "llm_timeout_s": 5.0,
    }
    return PromptsSettings(**(values | changes))


@pytest.fixture
async def openai_service(
    db: Database, openai_emulator_reset: Emulator
) -> AsyncIterator[PromptsService]:
    llm = language_model(openai_settings(openai_emulator_reset))
    assert isinstance(llm, OpenAILLM)
    yield PromptsService(db, llm)
    await llm.close()


async def test_the_catalogue_is_seeded_with_templates_for_the_subject(db: Database) -> None:
    packs = await PromptsService(db, _no_llm()).list_style_packs()
    assert {p.id for p in packs} >= REQUIRED_PACKS
    for pack in packs:
        assert pack.name and pack.description
        assert 3 <= len(pack.templates) <= 5
        assert all("{subject}" in t for t in pack.templates)


async def test_the_openai_path_enhances_keeping_the_trigger_word_and_the_pack_style(
    openai_service: PromptsService, openai_emulator_reset: Emulator, prompts_db: SchemaDb
) -> None:
    owner = user()
    result = await openai_service.prepare_prompt(owner, "me on a beach", WORD, "cinematic", True)
    assert result.enhanced and not (result.degraded or result.refused)
    assert contains_word(result.prompt, WORD) and "on a beach" in result.prompt
    packs = {p.id: p for p in await openai_service.list_style_packs()}
    assert any(t.split("{subject}")[0] in result.prompt for t in packs["cinematic"].templates)
    assert result.reason and result.enhancement_id is not None
    sent = openai_emulator_reset.control("requests")["last_body"]
    assert sent["model"] == "gpt-4o" and sent["response_format"] == {"type": "json_object"}
    assert [m["role"] for m in sent["messages"]] == ["system", "user"]
    stored = prompts_db.sql(
        "SELECT user_id, enhanced_prompt, model FROM enhancements WHERE id = %s",
        result.enhancement_id,
    )
    assert stored == [(owner, result.prompt, "gpt-4o")]
    events = prompts_db.sql(
        "SELECT routing_key FROM outbox WHERE payload->>'enhancement_id' = %s",
        str(result.enhancement_id),
    )
    assert events == [("prompts.enhancement.created.v1",)]


async def test_an_identical_request_is_answered_from_the_cache(
    openai_service: PromptsService, openai_emulator_reset: Emulator, prompts_db: SchemaDb
) -> None:
    owner = user()
    first = await openai_service.prepare_prompt(owner, "me hiking", WORD, "casual", True)
    calls = openai_emulator_reset.calls
    again = await openai_service.prepare_prompt(owner, "  Me HIKING ", WORD, "casual", True)
    assert openai_emulator_reset.calls == calls
    assert again == first
    # Nothing new stored: the cached answer names the enhancement it came from.
    assert prompts_db.sql("SELECT count(*) FROM enhancements WHERE user_id = %s", owner) == [(1,)]
    # Another mode, pack or trigger word is another question.
    await openai_service.prepare_prompt(owner, "me hiking", WORD, "casual", False)
    await openai_service.prepare_prompt(owner, "me hiking", WORD, "fantasy", True)
    await openai_service.prepare_prompt(owner, "me hiking", "vsnzzzzz", "casual", True)
    assert openai_emulator_reset.calls == calls + 3


async def test_the_cache_is_not_shared_between_users(
    openai_service: PromptsService, openai_emulator_reset: Emulator
) -> None:
    await openai_service.prepare_prompt(user(), "me skiing", WORD, "", True)
    calls = openai_emulator_reset.calls
    await openai_service.prepare_prompt(user(), "me skiing", WORD, "", True)
    assert openai_emulator_reset.calls == calls + 1


async def test_without_enhance_the_llm_only_judges_and_the_users_prompt_is_used(
    openai_service: PromptsService, openai_emulator_reset: Emulator
) -> None:
    result = await openai_service.prepare_prompt(user(), "me on a beach", WORD, "headshot", False)
    assert not (result.enhanced or result.degraded or result.refused)
    assert result.reason == "" and result.enhancement_id is None
    assert f"{WORD} on a beach" in result.prompt
    sent = openai_emulator_reset.control("requests")["last_body"]
    assert sent["max_completion_tokens"] == 60 and '"prompt"' not in sent["messages"][0]["content"]


@pytest.mark.parametrize("enhance", [True, False])
async def test_an_llm_refusal_is_returned_and_kept_for_its_user(
    openai_service: PromptsService, prompts_db: SchemaDb, db: Database, enhance: bool
) -> None:
    owner = user()
    prompt = f"me holding {REFUSAL_MARKER}"
    result = await openai_service.prepare_prompt(owner, prompt, WORD, "fantasy", enhance)
    assert result.refused and result.prompt == "" and not result.enhanced
    assert result.refusal_reason == "violence_gore" and result.refusal_message
    rows = prompts_db.sql(
        "SELECT source, category, prompt, style_pack, provider, from_cache "
        "FROM moderation_decisions WHERE user_id = %s",
        owner,
    )
    assert rows == [("llm", "violence_gore", prompt, "fantasy", "openai", False)]
    # Asked again: refused from the cache, and kept again.
    again = await openai_service.prepare_prompt(owner, prompt, WORD, "fantasy", enhance)
    assert again.refused and again.refusal_reason == "violence_gore"
    assert prompts_db.sql(
        "SELECT from_cache FROM moderation_decisions WHERE user_id = %s ORDER BY created_at",
        owner,
    ) == [(False,), (True,)]
    # Row-level security: only the owner sees them.
    async with db.uow(user()) as uow:
        seen = await uow.session.exec_driver_sql("SELECT count(*) FROM moderation_decisions")
        assert seen.scalar() == 0
    async with db.uow(owner) as uow:
        seen = await uow.session.exec_driver_sql("SELECT count(*) FROM moderation_decisions")
        assert seen.scalar() == 2


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_the_providers_own_refusal_is_a_refusal(
    db: Database,
    prompts_db: SchemaDb,
    openai_emulator_reset: Emulator,
    anthropic_emulator_reset: Emulator,
    provider: str,
) -> None:
    settings = (
        openai_settings(openai_emulator_reset)
        if provider == "openai"
        else anthropic_settings(anthropic_emulator_reset)
    )
    llm = language_model(settings)
    owner = user()
    try:
        result = await PromptsService(db, llm).prepare_prompt(
            owner, f"me and {PROVIDER_REFUSAL_MARKER}", WORD, "", True
        )
    finally:
        await llm.close()
    assert result.refused and result.refusal_reason == "other" and result.prompt == ""
    assert prompts_db.sql(
        "SELECT source, provider FROM moderation_decisions WHERE user_id = %s", owner
    ) == [("provider", provider)]


async def test_a_rule_refusal_makes_no_llm_call(
    openai_service: PromptsService, openai_emulator_reset: Emulator, prompts_db: SchemaDb
) -> None:
    owner = user()
    calls = openai_emulator_reset.calls
    result = await openai_service.prepare_prompt(owner, "n.u.d.e photo of me", WORD, "", True)
    assert result.refused and result.refusal_reason == "sexual_explicit"
    assert openai_emulator_reset.calls == calls
    assert prompts_db.sql(
        "SELECT source, category, provider FROM moderation_decisions WHERE user_id = %s", owner
    ) == [("rules", "sexual_explicit", None)]


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_an_unreachable_llm_degrades_to_the_users_prompt(
    openai_service: PromptsService,
    openai_emulator_reset: Emulator,
    prompts_db: SchemaDb,
    status: int,
) -> None:
    owner = user()
    openai_emulator_reset.control("config", {"fail_status": status, "retry_after_s": 0})
    result = await openai_service.prepare_prompt(owner, "me in Paris", WORD, "editorial", True)
    assert result.degraded and not (result.refused or result.enhanced)
    assert f"{WORD} in Paris" in result.prompt
    # Nothing cached or stored: the next request asks the LLM again.
    for table in ("prompt_cache", "moderation_decisions", "enhancements"):
        assert prompts_db.sql(f"SELECT count(*) FROM {table} WHERE user_id = %s", owner) == [(0,)]
    openai_emulator_reset.control("config", {"fail_status": None})
    healed = await openai_service.prepare_prompt(owner, "me in Paris", WORD, "editorial", True)
    assert healed.enhanced and not healed.degraded


async def test_an_unreachable_llm_still_lets_the_rule_layer_refuse(
    openai_service: PromptsService, openai_emulator_reset: Emulator
) -> None:
    openai_emulator_reset.control("config", {"fail_status": 503})
    result = await openai_service.prepare_prompt(user(), "a decapitated knight", WORD, "", True)
    assert result.refused and result.refusal_reason == "violence_gore"


async def test_an_answer_that_is_not_a_verdict_degrades(
    db: Database, openai_emulator_reset: Emulator
) -> None:
    # Five tokens cut the JSON mid-way, as the real API does when the budget runs out.
    llm = OpenAILLM(openai_settings(openai_emulator_reset))
    try:
        service = PromptsService(db, llm, max_tokens=5)
        result = await service.prepare_prompt(user(), "me at dawn", WORD, "", True)
    finally:
        await llm.close()
    assert result.degraded and result.prompt == f"{WORD} at dawn"


async def test_the_anthropic_path_enhances_and_a_timeout_degrades(
    db: Database, anthropic_emulator_reset: Emulator
) -> None:
    llm = AnthropicLLM(anthropic_settings(anthropic_emulator_reset, llm_timeout_s=0.3))
    try:
        service = PromptsService(db, llm)
        result = await service.prepare_prompt(user(), "me as a wizard", WORD, "fantasy", True)
        assert result.enhanced and contains_word(result.prompt, WORD)
        anthropic_emulator_reset.control("config", {"latency_ms": 1500})
        slow = await service.prepare_prompt(user(), "me as a wizard", WORD, "fantasy", True)
        assert slow.degraded and contains_word(slow.prompt, WORD)
        with pytest.raises(LLMError) as info:
            await llm.complete(system="s", user="u", max_tokens=10)
        assert info.value.transient and info.value.status is None
    finally:
        await llm.close()


async def test_no_answer_within_the_callers_deadline_degrades_before_it(
    openai_service: PromptsService, openai_emulator_reset: Emulator
) -> None:
    openai_emulator_reset.control("config", {"latency_ms": 5000})
    asked = openai_emulator_reset.calls
    result = await openai_service.prepare_prompt(
        user(), "me at sea", WORD, "", True, time_left_s=0.5
    )
    assert result.degraded and result.prompt == f"{WORD} at sea"
    # The LLM was asked, and the degraded answer came before the LLM's own.
    requests = openai_emulator_reset.control("requests")
    assert requests["count"] == asked + 1 and sum(requests["by_status"].values()) == 0
    calls = openai_emulator_reset.calls
    spent = await openai_service.prepare_prompt(
        user(), "me at sea", WORD, "", True, time_left_s=0.0
    )
    assert spent.degraded and openai_emulator_reset.calls == calls


@pytest.mark.parametrize(
    ("prompt", "word", "pack", "error", "code"),
    [
        ("me", WORD, "no-such-pack", errors.NotFound, "style_pack_not_found"),
        ("   ", WORD, "", errors.InvalidArgument, "prompt_invalid"),
        ("x" * (MAX_PROMPT_CHARS + 1), WORD, "", errors.InvalidArgument, "prompt_invalid"),
        ("me", "", "", errors.InvalidArgument, "trigger_word_invalid"),
    ],
)
async def test_bad_input_is_an_error_with_a_stable_code(
    openai_service: PromptsService,
    openai_emulator_reset: Emulator,
    prompt: str,
    word: str,
    pack: str,
    error: type[Exception],
    code: str,
) -> None:
    with pytest.raises(error) as info:
        await openai_service.prepare_prompt(user(), prompt, word, pack, True)
    assert getattr(info.value, "code", None) == code
    assert openai_emulator_reset.calls == 0


async def test_the_sweeper_deletes_expired_entries_of_every_user_only(
    db: Database, openai_emulator_reset: Emulator, prompts_db: SchemaDb
) -> None:
    llm = OpenAILLM(openai_settings(openai_emulator_reset))
    try:
        service = PromptsService(db, llm, cache_ttl=timedelta(hours=1))
        owners = [user(), user()]
        for owner in owners:
            await service.prepare_prompt(owner, "me by the lake", WORD, "", True)
            await service.prepare_prompt(owner, "me by the sea", WORD, "", True)
        prompts_db.sql(
            "UPDATE prompt_cache SET expires_at = now() - interval '1 second' "
            "WHERE user_id = ANY(%s) AND answer->>'prompt' LIKE '%%lake%%'",
            owners,
        )
        assert await sweep_prompt_cache(db) >= 2
        left = prompts_db.sql(
            "SELECT answer->>'prompt' FROM prompt_cache WHERE user_id = ANY(%s)", owners
        )
        assert len(left) == 2 and all("sea" in p for (p,) in left)
        # An expired entry is never served, swept or not.
        prompts_db.sql("UPDATE prompt_cache SET expires_at = now() WHERE user_id = %s", owners[0])
        calls = openai_emulator_reset.calls
        await service.prepare_prompt(owners[0], "me by the sea", WORD, "", True)
        assert openai_emulator_reset.calls == calls + 1
    finally:
        await llm.close()


# --- the enhancement (POST /v1/prompts/enhance): moderated as a generation is -------------


@pytest.mark.parametrize(
    ("prompt", "source", "category"),
    [
        ("n.u.d.e photo of me", "rules", "sexual_explicit"),
        (f"me holding {REFUSAL_MARKER}", "llm", "violence_gore"),
        (f"me and {PROVIDER_REFUSAL_MARKER}", "provider", "other"),
    ],
    ids=["rules", "llm", "provider"],
)
async def test_a_prompt_refused_for_a_generation_is_refused_for_an_enhancement_alike(
    openai_service: PromptsService,
    prompts_db: SchemaDb,
    prompt: str,
    source: str,
    category: str,
) -> None:
    owner = user()
    generation = await openai_service.prepare_prompt(owner, prompt, WORD, "", True)
    assert generation.refused and generation.refusal_reason == category
    with pytest.raises(errors.InvalidArgument) as info:
        await openai_service.enhance_prompt(owner, prompt)
    assert info.value.code == "prompt_refused"
    assert info.value.message == generation.refusal_message
    decisions = prompts_db.sql(
        "SELECT source, category, style_pack FROM moderation_decisions WHERE user_id = %s "
        "ORDER BY created_at",
        owner,
    )
    assert decisions == [(source, category, None)] * 2
    assert prompts_db.sql("SELECT count(*) FROM enhancements WHERE user_id = %s", owner) == [(0,)]


async def test_a_rewrite_the_rules_refuse_is_refused_on_both_paths(
    db: Database, prompts_db: SchemaDb
) -> None:
    """The judge allowed the prompt, but its rewrite is one the rules refuse: the user would
    otherwise get, or generate, what they could not have asked for."""
    rewrite = f"{WORD} on a battlefield, decapitated soldiers around, dramatic light"
    service = PromptsService(db, _answering(rewrite))
    owner = user()
    generation = await service.prepare_prompt(owner, "me on a battlefield", WORD, "", True)
    assert generation.refused and generation.refusal_reason == "violence_gore"
    with pytest.raises(errors.InvalidArgument) as info:
        await service.enhance_prompt(owner, "me on a battlefield")
    assert info.value.code == "prompt_refused"
    assert info.value.message == generation.refusal_message
    assert (
        prompts_db.sql(
            "SELECT source, category FROM moderation_decisions WHERE user_id = %s", owner
        )
        == [("rules", "violence_gore")] * 2
    )
    # Neither stored nor cached: asked again, the LLM is asked again.
    for table in ("enhancements", "prompt_cache"):
        assert prompts_db.sql(f"SELECT count(*) FROM {table} WHERE user_id = %s", owner) == [(0,)]


async def test_an_allowed_enhancement_is_the_judges_rewrite(
    openai_service: PromptsService, openai_emulator_reset: Emulator
) -> None:
    enhanced = await openai_service.enhance_prompt(user(), "me on a beach")
    assert enhanced.enhanced_prompt.startswith("me on a beach,")
    sent = openai_emulator_reset.control("requests")["last_body"]
    assert sent["response_format"] == {"type": "json_object"}
    assert '"allowed"' in sent["messages"][0]["content"]


@pytest.mark.parametrize(
    ("status", "kind", "code"),
    [
        (503, errors.Unavailable, "llm_unavailable"),
        (429, errors.ResourceExhausted, "llm_rate_limited"),
        (400, errors.InvalidArgument, "llm_rejected_prompt"),
        (401, errors.FailedPrecondition, "llm_not_configured"),
        (404, errors.FailedPrecondition, "llm_not_configured"),
    ],
)
async def test_an_llm_failure_is_the_enhancements_answer_with_its_own_status(
    openai_service: PromptsService,
    openai_emulator_reset: Emulator,
    status: int,
    kind: type[errors.DomainError],
    code: str,
) -> None:
    openai_emulator_reset.control("config", {"fail_status": status, "retry_after_s": 0})
    with pytest.raises(errors.DomainError) as info:
        await openai_service.enhance_prompt(user(), "me in Rome")
    assert type(info.value) is kind and info.value.code == code
    # A generation still goes ahead with the user's own prompt.
    degraded = await openai_service.prepare_prompt(user(), "me in Rome", WORD, "", True)
    assert degraded.degraded and not degraded.refused


async def test_the_app_role_cannot_bypass_row_level_security(db: Database) -> None:
    await db.assert_rls_cannot_be_bypassed()


def _no_llm() -> Any:
    class NoLLM:
        provider = "none"
        model = "none"

        async def complete(self, **_: Any) -> Any:
            raise AssertionError("no LLM call expected")

        async def close(self) -> None:
            return None

    return NoLLM()


def _answering(rewrite: str) -> Any:
    """An LLM whose judge allows every prompt and answers ``rewrite`` for it."""

    class Answering:
        provider = "stub"
        model = "stub"

        async def complete(self, **_: Any) -> Completion:
            text = json.dumps({"allowed": True, "category": None, "prompt": rewrite})
            return Completion(text=text, model=self.model, input_tokens=1, output_tokens=1)

        async def close(self) -> None:
            return None

    return Answering()
