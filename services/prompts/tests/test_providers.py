"""Each LLM SDK error class maps to one failure: a request the provider refused is not an
outage. The errors are the official SDKs' own, raised from their providers' error bodies over
real HTTP (a stand-in server answers the status the request's model names)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import SecretStr

from visiona.emulators._server import running
from visiona.emulators.ports import free_port
from visiona.prompts.config import PromptsSettings
from visiona.prompts.providers import LLMError, LLMFailure
from visiona.prompts.providers.anthropic import AnthropicLLM
from visiona.prompts.providers.openai import OpenAILLM

# Anthropic's error type per status (its "Errors" page).
ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    409: "invalid_request_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    503: "api_error",
    529: "overloaded_error",
}


@pytest.fixture(scope="module")
def provider_url() -> Iterator[str]:
    """Fails every call with the status (and OpenAI error code) its ``model`` names:
    ``fail-<status>[-<code>]``."""
    app = FastAPI()

    def wanted(body: dict[str, Any]) -> tuple[int, str | None]:
        _, status, *code = str(body["model"]).split("-", 2)
        return int(status), code[0] if code else None

    @app.post("/v1/messages")
    async def messages(request: Request) -> JSONResponse:
        status, _ = wanted(await request.json())
        error = {"type": ANTHROPIC_TYPES[status], "message": "the prompt 'me' failed"}
        return JSONResponse(
            {"type": "error", "error": error, "request_id": "req_1"},
            status_code=status,
            headers={"x-should-retry": "false"},
        )

    @app.post("/v1/chat/completions")
    async def completions(request: Request) -> JSONResponse:
        status, code = wanted(await request.json())
        error = {"message": "the prompt 'me' failed", "type": "x", "param": None, "code": code}
        return JSONResponse({"error": error}, status_code=status)

    with running(app) as url:
        yield url


def anthropic_llm(base_url: str, model: str) -> AnthropicLLM:
    return AnthropicLLM(
        PromptsSettings(
            anthropic_api_key=SecretStr("sk-ant-test"),
            anthropic_base_url=base_url,
            anthropic_model=model,
            llm_max_retries=0,
            llm_timeout_s=5.0,
        )
    )


def openai_llm(base_url: str, model: str) -> OpenAILLM:
    return OpenAILLM(
        PromptsSettings(
            llm_provider="openai",
            openai_api_key=SecretStr("sk-test"),
            openai_base_url=f"{base_url}/v1",
            openai_model=model,
            llm_max_retries=0,
            llm_timeout_s=5.0,
        )
    )


async def failure_of(llm: AnthropicLLM | OpenAILLM) -> LLMError:
    try:
        with pytest.raises(LLMError) as caught:
            await llm.complete(system="s", user="me", max_tokens=10)
    finally:
        await llm.close()
    return caught.value


@pytest.mark.parametrize(
    ("status", "failure"),
    [
        (400, LLMFailure.REJECTED),
        (413, LLMFailure.REJECTED),
        (422, LLMFailure.REJECTED),
        (401, LLMFailure.NOT_CONFIGURED),
        (402, LLMFailure.NOT_CONFIGURED),
        (403, LLMFailure.NOT_CONFIGURED),
        (404, LLMFailure.NOT_CONFIGURED),
        (429, LLMFailure.RATE_LIMITED),
        (408, LLMFailure.UNAVAILABLE),
        (409, LLMFailure.UNAVAILABLE),
        (500, LLMFailure.UNAVAILABLE),
        (503, LLMFailure.UNAVAILABLE),
        (529, LLMFailure.UNAVAILABLE),
    ],
)
async def test_every_anthropic_error_class_has_a_deliberate_failure(
    provider_url: str, status: int, failure: LLMFailure
) -> None:
    error = await failure_of(anthropic_llm(provider_url, f"fail-{status}"))
    assert (error.status, error.failure) == (status, failure)
    assert error.transient == (failure in (LLMFailure.UNAVAILABLE, LLMFailure.RATE_LIMITED))


@pytest.mark.parametrize(
    ("model", "failure"),
    [
        ("fail-400", LLMFailure.REJECTED),
        ("fail-422", LLMFailure.REJECTED),
        ("fail-401-invalid_api_key", LLMFailure.NOT_CONFIGURED),
        ("fail-403", LLMFailure.NOT_CONFIGURED),
        ("fail-404-model_not_found", LLMFailure.NOT_CONFIGURED),
        ("fail-429-rate_limit_exceeded", LLMFailure.RATE_LIMITED),
        # No quota left is no rate limit: it lasts until someone pays.
        ("fail-429-insufficient_quota", LLMFailure.NOT_CONFIGURED),
        ("fail-409", LLMFailure.UNAVAILABLE),
        ("fail-500", LLMFailure.UNAVAILABLE),
        ("fail-503", LLMFailure.UNAVAILABLE),
    ],
)
async def test_every_openai_error_class_has_a_deliberate_failure(
    provider_url: str, model: str, failure: LLMFailure
) -> None:
    error = await failure_of(openai_llm(provider_url, model))
    assert error.failure is failure


@pytest.mark.parametrize("code", ["content_policy_violation", "invalid_prompt"])
async def test_openais_policy_refusal_is_the_providers_refusal_not_an_error(
    provider_url: str, code: str
) -> None:
    llm = openai_llm(provider_url, f"fail-400-{code}")
    try:
        completion = await llm.complete(system="s", user="me", max_tokens=10)
    finally:
        await llm.close()
    assert completion.provider_refused and completion.text == ""


async def test_no_answer_at_all_is_an_outage() -> None:
    port = free_port()  # reserved: nothing will listen on it
    for llm in (
        anthropic_llm(f"http://127.0.0.1:{port}", "m"),
        openai_llm(f"http://127.0.0.1:{port}", "m"),
    ):
        error = await failure_of(llm)
        assert error.failure is LLMFailure.UNAVAILABLE and error.status is None
