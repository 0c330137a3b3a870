"""The OpenAI emulator the OpenAI adapter is tested against, driven through the real `openai`
SDK over real HTTP: it must behave like Chat Completions for the tests to mean anything."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import Any

import httpx
import openai
import pytest

from tests.support.waiting import serving
from visiona.emulators._server import running
from visiona.emulators.anthropic import PROVIDER_REFUSAL_MARKER, REFUSAL_MARKER, enhance
from visiona.emulators.openai import Settings, create_app
from visiona.emulators.ports import free_port

from .conftest import Emulator

KEY = "sk-openai-local"
MODEL = "gpt-4o"
PROMPT = "me as an astronaut on the moon"
JUDGE = 'Answer in JSON: {"allowed": true or false, "category": null or a code}'


@pytest.fixture
def server(openai_emulator_reset: Emulator) -> Emulator:
    return openai_emulator_reset


def client(server: Emulator, max_retries: int = 0, key: str = KEY, **kw: Any) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=f"{server.url}/v1", max_retries=max_retries, **kw)


def ask(c: openai.OpenAI, prompt: str = PROMPT, system: str | None = None, **kw: Any) -> Any:
    messages: list[Any] = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": prompt})
    return c.chat.completions.create(model=MODEL, messages=messages, **kw)


def test_the_sdk_parses_a_deterministic_completion(server: Emulator) -> None:
    raw = client(server).chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": PROMPT}]
    )
    completion = raw.parse()
    assert re.fullmatch(r"chatcmpl-[A-Za-z0-9]{29}", completion.id)
    assert raw.headers["x-request-id"].startswith("req_")
    assert completion.object == "chat.completion" and completion.model == MODEL
    (choice,) = completion.choices
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    assert choice.message.content == enhance(PROMPT) and choice.message.refusal is None
    usage = completion.usage
    assert usage is not None and usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_text_parts_developer_role_and_n(server: Emulator) -> None:
    completion = client(server).chat.completions.create(
        model=MODEL,
        n=2,
        messages=[
            {"role": "developer", "content": "Enhance prompts."},
            {"role": "user", "content": [{"type": "text", "text": PROMPT}]},
        ],
    )
    assert [c.index for c in completion.choices] == [0, 1]
    assert all(c.message.content == enhance(PROMPT) for c in completion.choices)


def test_the_json_mode_needs_the_word_json_like_the_real_api(server: Emulator) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        ask(client(server), response_format={"type": "json_object"})
    body: Any = info.value.body
    assert body["type"] == "invalid_request_error" and body["param"] == "messages"
    answer = ask(client(server), system=JUDGE, response_format={"type": "json_object"})
    assert json.loads(answer.choices[0].message.content) == {"allowed": True, "category": None}


def test_the_marker_word_is_refused_in_the_judgement(server: Emulator) -> None:
    answer = ask(client(server), f"<prompt>{REFUSAL_MARKER}</prompt>", system=JUDGE)
    verdict = json.loads(answer.choices[0].message.content)
    assert verdict == {"allowed": False, "category": "violence_gore"}


def test_max_completion_tokens_cuts_the_answer(server: Emulator) -> None:
    completion = ask(client(server), max_completion_tokens=4)
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None and completion.usage.completion_tokens == 4


@pytest.mark.parametrize("key", ["wrong", "sk-but-unknown"])
def test_a_bad_key_is_an_authentication_error(key: str) -> None:
    with running(create_app(Settings(api_keys=frozenset({KEY})))) as url:
        with pytest.raises(openai.AuthenticationError) as info:
            ask(openai.OpenAI(api_key=key, base_url=f"{url}/v1", max_retries=0))
        assert info.value.code == "invalid_api_key" and info.value.type == "invalid_request_error"
        assert ask(openai.OpenAI(api_key=KEY, base_url=f"{url}/v1", max_retries=0)).choices


def test_a_missing_key_is_401_with_a_null_code(server: Emulator) -> None:
    response = httpx.post(
        f"{server.url}/v1/chat/completions",
        json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
    )
    assert response.status_code == 401
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}
    assert response.json()["error"]["code"] is None


@pytest.mark.parametrize(
    "body",
    [
        {"messages": [{"role": "user", "content": "hi"}]},
        {"model": MODEL, "messages": []},
        {"model": MODEL, "messages": [{"role": "robot", "content": "hi"}]},
        {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 0},
        {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True},
    ],
)
def test_invalid_requests_are_400(server: Emulator, body: dict[str, Any]) -> None:
    response = httpx.post(
        f"{server.url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_a_429_once_is_retried_by_the_sdk(server: Emulator) -> None:
    server.control("config", {"fail_status": 429, "fail_count": 1, "retry_after_s": 0.05})
    assert ask(client(server, max_retries=2)).choices[0].message.content == enhance(PROMPT)
    assert server.control("requests")["by_status"] == {"429": 1, "200": 1}


@pytest.mark.parametrize(
    ("status", "error", "error_type"),
    [
        (429, openai.RateLimitError, "requests"),
        (500, openai.InternalServerError, "server_error"),
        (503, openai.InternalServerError, "server_error"),
        (404, openai.NotFoundError, "invalid_request_error"),
    ],
)
def test_injected_failures_have_the_real_shapes(
    server: Emulator, status: int, error: type[Exception], error_type: str
) -> None:
    server.control("config", {"fail_status": status, "retry_after_s": 0})
    with pytest.raises(error) as info:
        ask(client(server))
    assert isinstance(info.value, openai.APIStatusError)
    assert info.value.status_code == status and info.value.type == error_type


def test_latency_makes_the_sdk_time_out(server: Emulator) -> None:
    server.control("config", {"latency_ms": 800})
    with pytest.raises(openai.APITimeoutError):
        ask(client(server, timeout=0.2))


def test_an_unknown_route_is_an_openai_404(server: Emulator) -> None:
    response = httpx.post(f"{server.url}/v1/nope", json={})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_url"


def test_settings_come_from_openai_emulator_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_EMULATOR_API_KEY", "sk-a,sk-b")
    monkeypatch.setenv("OPENAI_EMULATOR_FAIL_STATUS", "503")
    monkeypatch.setenv("ANTHROPIC_EMULATOR_LATENCY_MS", "25")
    settings = Settings.from_env()
    assert settings.api_keys == frozenset({"sk-a", "sk-b"})
    assert (settings.fail_status, settings.latency_ms) == (503, 0)


def test_the_cli_serves_it() -> None:
    port = free_port()  # reserved: nothing will listen on it
    proc = subprocess.Popen(
        [sys.executable, "-m", "visiona.emulators", "openai", "--port", str(port)],
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert serving(proc, f"http://127.0.0.1:{port}/healthz") == {"status": "ok"}
    finally:
        proc.terminate()
        proc.wait(10)


def test_the_provider_refusal_marker_is_a_content_filter_stop(server: Emulator) -> None:
    completion = ask(client(server), f"me and {PROVIDER_REFUSAL_MARKER}")
    (choice,) = completion.choices
    assert choice.finish_reason == "content_filter" and choice.message.content is None
