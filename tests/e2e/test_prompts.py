"""The prompts service in the running platform: the style-pack catalogue through the gateway,
and PreparePrompt (what the generation service calls before every generation) over gRPC with
the caller in an internal token, with Claude reached through the SDK against the Anthropic emulator."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import httpx
import pytest

from tests.support.stack import RunningStack
from visiona.emulators.anthropic import REFUSAL_MARKER
from visiona.kit.grpcserver import ERROR_CODE_KEY, INTERNAL_TOKEN_KEY
from visiona.kit.internal_token import Minter
from visiona.prompts.domain.prompt import contains_word
from visiona.prompts.v1 import prompts_pb2, prompts_pb2_grpc

WORD = "vsnprmtq"


def anthropic(stack: RunningStack, path: str, body: dict[str, Any] | None = None) -> Any:
    url = f"http://127.0.0.1:{stack.cfg.ports['anthropic']}/_emulator/{path}"
    response = httpx.get(url) if body is None else httpx.post(url, json=body)
    response.raise_for_status()
    return response.json()


def llm_calls(stack: RunningStack) -> int:
    return int(anthropic(stack, "requests")["count"])


def llm_answers(stack: RunningStack) -> int:
    """Calls the LLM has answered (a slow one is counted once its answer is sent)."""
    return sum(anthropic(stack, "requests")["by_status"].values())


class Prompts(prompts_pb2_grpc.PromptsServiceStub):
    """The prompts stub, and the internal tokens its calls carry (minted with the stack's
    secret, as the generation service mints them)."""

    def __init__(self, channel: grpc.aio.Channel, minter: Minter) -> None:
        super().__init__(channel)
        self.minter = minter

    def caller(self, user: str | None) -> tuple[tuple[str, str], ...]:
        """Metadata of a call made for ``user`` (None: the system principal)."""
        return ((INTERNAL_TOKEN_KEY, self.minter.token(user)),)


@pytest.fixture
async def prompts(stack: RunningStack) -> AsyncIterator[Prompts]:
    minter = Minter(stack.cfg.internal_token_secret, issuer="generation")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.cfg.ports['prompts']}") as channel:
        yield Prompts(channel, minter)


@pytest.fixture
def llm_down(stack: RunningStack) -> Iterator[None]:
    """Claude overloaded (529) on every call, SDK retries included, until the test ends."""
    anthropic(stack, "config", {"fail_status": 529})
    try:
        yield
    finally:
        anthropic(stack, "config", {"fail_status": None})


async def prepare(
    stub: Prompts,
    prompt: str,
    *,
    user: str | None = None,
    pack: str = "",
    enhance: bool = True,
    trigger_word: str = WORD,
) -> prompts_pb2.PreparePromptResponse:
    metadata = stub.caller(user or f"user_{uuid.uuid4().hex[:10]}")
    response: prompts_pb2.PreparePromptResponse = await stub.PreparePrompt(
        prompts_pb2.PreparePromptRequest(
            prompt=prompt, trigger_word=trigger_word, style_pack=pack, enhance=enhance
        ),
        metadata=metadata,
        timeout=30,
    )
    return response


def error_code(error: grpc.aio.AioRpcError) -> str | None:
    return dict(error.trailing_metadata() or ()).get(ERROR_CODE_KEY)


def test_the_packs_are_listed_through_the_gateway(stack: RunningStack) -> None:
    response = httpx.get(f"{stack.url}/v1/prompts/packs", headers=stack.auth("pack-reader"))
    assert response.status_code == 200, response.text
    packs = {p["id"]: p for p in response.json()["packs"]}
    assert {"headshot", "editorial", "fantasy", "cinematic", "casual"} <= set(packs)
    for pack in packs.values():
        assert pack["name"] and pack["description"]
        assert 3 <= len(pack["templates"]) <= 5
        assert all("{subject}" in t for t in pack["templates"])
        assert isinstance(pack["negative_cues"], list)
    assert "/v1/prompts/packs" in httpx.get(f"{stack.url}/openapi.json").json()["paths"]


def test_the_packs_need_a_session(stack: RunningStack) -> None:
    response = httpx.get(f"{stack.url}/v1/prompts/packs")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_an_enhanced_prompt_keeps_the_trigger_word_and_the_pack_style(
    stack: RunningStack, prompts: Prompts
) -> None:
    user = "user_prepare-enhanced"
    response = await prepare(prompts, "me on a rooftop at night", user=user, pack="cinematic")
    assert response.enhanced and not (response.degraded or response.refused)
    assert contains_word(response.prompt, WORD) and "on a rooftop at night" in response.prompt
    async with httpx.AsyncClient(base_url=stack.url, headers=stack.auth("x")) as client:
        packs = (await client.get("/v1/prompts/packs")).json()["packs"]
    cinematic = next(p for p in packs if p["id"] == "cinematic")
    assert any(t.split("{subject}")[0] in response.prompt for t in cinematic["templates"])
    assert response.reason
    stored = stack.admin_sql(
        "SELECT user_id, enhanced_prompt FROM prompts.enhancements WHERE id = %s",
        response.enhancement_id,
    )
    assert stored == [(user, response.prompt)]


async def test_an_identical_request_makes_no_second_llm_call(
    stack: RunningStack, prompts: Prompts
) -> None:
    user = "user_prepare-cached"
    first = await prepare(prompts, "me reading in a library", user=user, pack="editorial")
    calls = llm_calls(stack)
    again = await prepare(prompts, "me reading in a library", user=user, pack="editorial")
    assert llm_calls(stack) == calls
    assert again == first and again.enhanced


async def test_without_enhance_the_users_prompt_is_judged_and_used(
    stack: RunningStack, prompts: Prompts
) -> None:
    calls = llm_calls(stack)
    response = await prepare(prompts, "me in a suit", pack="headshot", enhance=False)
    assert llm_calls(stack) == calls + 1
    assert not (response.enhanced or response.degraded or response.refused)
    assert f"{WORD} in a suit" in response.prompt and response.enhancement_id == ""


async def test_a_clear_violation_is_refused_by_the_rules_without_the_llm(
    stack: RunningStack, prompts: Prompts
) -> None:
    user = "user_prepare-rules"
    calls = llm_calls(stack)
    response = await prepare(prompts, "me d3c@pitated, g.o.r.e", user=user)
    assert llm_calls(stack) == calls
    assert response.refused and response.prompt == "" and not response.enhanced
    assert response.refusal_reason == "violence_gore" and response.refusal_message
    assert stack.admin_sql(
        "SELECT source, category FROM prompts.moderation_decisions WHERE user_id = %s", user
    ) == [("rules", "violence_gore")]


async def test_the_llm_can_refuse_what_the_rules_let_through(
    stack: RunningStack, prompts: Prompts
) -> None:
    user = "user_prepare-llm-refusal"
    calls = llm_calls(stack)
    response = await prepare(prompts, f"me with {REFUSAL_MARKER}", user=user, pack="fantasy")
    assert llm_calls(stack) == calls + 1
    assert response.refused and response.refusal_reason == "violence_gore"
    assert stack.admin_sql(
        "SELECT source, category, style_pack FROM prompts.moderation_decisions WHERE user_id = %s",
        user,
    ) == [("llm", "violence_gore", "fantasy")]


@pytest.mark.usefixtures("llm_down")
async def test_an_unreachable_llm_gives_a_degraded_answer_not_an_error(
    stack: RunningStack, prompts: Prompts
) -> None:
    user = "user_prepare-degraded"
    response = await prepare(prompts, "me at the Eiffel Tower", user=user, pack="casual")
    assert response.degraded and not (response.refused or response.enhanced)
    assert f"{WORD} at the Eiffel Tower" in response.prompt
    assert response.reason == "" and response.enhancement_id == ""
    moderation = await prepare(prompts, "me at the Eiffel Tower", user=user, enhance=False)
    assert moderation.degraded and not moderation.refused
    # Never the prompt in the logs, even when degrading.
    assert "Eiffel" not in stack.processes.log("prompts")


async def test_an_llm_slower_than_the_callers_deadline_degrades_in_time(
    stack: RunningStack, prompts: Prompts
) -> None:
    anthropic(stack, "config", {"latency_ms": 5000})
    before = llm_answers(stack)
    try:
        # A late answer would be DEADLINE_EXCEEDED: an answer at all came in time.
        response = await prompts.PreparePrompt(
            prompts_pb2.PreparePromptRequest(
                prompt="me under the northern lights", trigger_word=WORD, enhance=True
            ),
            metadata=prompts.caller("user_prepare-deadline"),
            timeout=2.5,
        )
        # The LLM was asked and has not answered yet: the service did not wait for it.
        assert llm_answers(stack) == before
    finally:
        anthropic(stack, "config", {"latency_ms": 0})
    assert response.degraded and f"{WORD} under the northern lights" in response.prompt


@pytest.mark.parametrize(
    ("prompt", "pack", "status", "code"),
    [
        ("me", "no-such-pack", grpc.StatusCode.NOT_FOUND, "style_pack_not_found"),
        ("x" * 2001, "", grpc.StatusCode.INVALID_ARGUMENT, "prompt_invalid"),
        (" ", "", grpc.StatusCode.INVALID_ARGUMENT, "prompt_invalid"),
    ],
)
async def test_bad_requests_are_errors_with_stable_codes(
    prompts: Prompts,
    prompt: str,
    pack: str,
    status: grpc.StatusCode,
    code: str,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await prepare(prompts, prompt, pack=pack)
    assert info.value.code() == status
    assert error_code(info.value) == code


async def test_prepare_needs_the_callers_identity(prompts: Prompts) -> None:
    # A valid token for the system principal: trusted, but no user to moderate for.
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await prompts.PreparePrompt(
            prompts_pb2.PreparePromptRequest(prompt="me", trigger_word=WORD),
            metadata=prompts.caller(None),
            timeout=10,
        )
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_code(info.value) == "unauthenticated"
