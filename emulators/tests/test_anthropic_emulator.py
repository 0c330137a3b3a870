"""The Anthropic emulator, driven through the real `anthropic` SDK over real HTTP."""

# Every URL here is the local emulator's own http:// address.
# ruff: noqa: S310

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from visiona.emulators._server import running
from visiona.emulators.anthropic import (
    PROVIDER_REFUSAL_MARKER,
    REFUSAL_MARKER,
    Settings,
    answer,
    create_app,
    enhance,
)

KEY = "sk-ant-local"
MODEL = "claude-sonnet-4-6"
PROMPT = "me as an astronaut on the moon"


def call(base: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
    """Plain HTTP call; returns (status, headers, json) even for 4xx/5xx."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, headers=headers or {})
    if data is not None:
        req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.headers, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, err.headers, json.loads(err.read())


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with running(create_app(Settings())) as url:
        yield url


@pytest.fixture(autouse=True)
def _reset(base_url: str) -> None:
    status, _, _ = call(base_url, "/_emulator/reset", {})
    assert status == 200


def client(base_url: str, max_retries: int = 0, key: str = KEY) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=key, base_url=base_url, max_retries=max_retries)


def ask(c: anthropic.Anthropic, prompt: str = PROMPT, **kw: Any) -> Any:
    kw.setdefault("max_tokens", 512)
    return c.messages.create(model=MODEL, messages=[{"role": "user", "content": prompt}], **kw)


def test_sdk_parses_a_deterministic_enhancement(base_url: str) -> None:
    resp = ask(client(base_url), system="You enhance photo prompts.")
    assert re.fullmatch(r"msg_[A-Za-z0-9]{24}", resp.id)
    assert (resp.type, resp.role, resp.model) == ("message", "assistant", MODEL)
    assert resp.stop_reason == "end_turn" and resp.stop_sequence is None
    text = resp.content[0].text
    assert resp.content[0].type == "text"
    assert text.startswith(PROMPT) and len(text) > len(PROMPT) + 20
    assert all(word in text.split(", ")[0].split() for word in PROMPT.split())
    assert resp.usage.input_tokens > 0 and resp.usage.output_tokens > 0
    again = ask(client(base_url))
    assert again.content[0].text == text and again.id != resp.id
    assert text != ask(client(base_url), "a portrait in a rainy street").content[0].text


async def test_async_client(base_url: str) -> None:
    async with anthropic.AsyncAnthropic(api_key=KEY, base_url=base_url, max_retries=0) as c:
        resp = await c.messages.create(
            model=MODEL,
            max_tokens=256,
            messages=[
                {"role": "user", "content": [{"type": "text", "text": "first idea"}]},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": [{"type": "text", "text": PROMPT}]},
            ],
        )
    block = resp.content[0]
    assert isinstance(block, anthropic.types.TextBlock) and block.text == enhance(PROMPT)


def test_raw_shape_and_x_api_key(base_url: str) -> None:
    body = {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
    status, headers, data = call(base_url, "/v1/messages", body, {"x-api-key": KEY})
    assert status == 200
    assert headers["request-id"].startswith("req_")
    assert set(data) == {
        "id",
        "type",
        "role",
        "model",
        "content",
        "stop_reason",
        "stop_sequence",
        "usage",
    }
    assert set(data["usage"]) == {"input_tokens", "output_tokens"}


def test_max_tokens_cuts_the_answer(base_url: str) -> None:
    resp = ask(client(base_url), max_tokens=4)
    assert resp.stop_reason == "max_tokens"
    assert resp.usage.output_tokens == 4
    assert len(resp.content[0].text.split()) <= 3


@pytest.mark.parametrize("key", ["wrong", "sk-antx-local"])
def test_wrong_key_is_authentication_error(base_url: str, key: str) -> None:
    with pytest.raises(anthropic.AuthenticationError) as info:
        ask(client(base_url, key=key))
    assert info.value.status_code == 401
    assert info.value.request_id and info.value.request_id.startswith("req_")
    body: Any = info.value.body
    assert body["error"]["type"] == "authentication_error"


def test_missing_key_is_401(base_url: str) -> None:
    body = {"model": MODEL, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    status, headers, data = call(base_url, "/v1/messages", body)
    assert status == 401 and headers["request-id"] == data["request_id"]
    assert data["type"] == "error" and data["error"]["type"] == "authentication_error"


def test_configured_key_set_is_exact() -> None:
    with running(create_app(Settings(api_keys=frozenset({"sk-ant-only"})))) as url:
        assert ask(client(url, key="sk-ant-only")).content[0].text
        with pytest.raises(anthropic.AuthenticationError):
            ask(client(url, key=KEY))


@pytest.mark.parametrize(
    "messages",
    [
        [],
        [{"role": "user", "content": ""}],
        [{"role": "robot", "content": "hi"}],
        [{"role": "user", "content": [{"type": "image", "source": {}}]}],
        [{"role": "assistant", "content": "only an assistant turn"}],
    ],
)
def test_invalid_messages_are_bad_request(base_url: str, messages: Any) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        client(base_url).messages.create(model=MODEL, max_tokens=16, messages=messages)
    body: Any = info.value.body
    assert body["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    "patch",
    [{"max_tokens": 0}, {"max_tokens": "9"}, {"model": ""}, {"system": 5}, {"stream": True}],
)
def test_invalid_fields_are_400(base_url: str, patch: dict[str, Any]) -> None:
    body = {"model": MODEL, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    status, _, data = call(base_url, "/v1/messages", body | patch, {"x-api-key": KEY})
    assert status == 400 and data["error"]["type"] == "invalid_request_error"


def test_injected_529_is_overloaded(base_url: str) -> None:
    call(base_url, "/_emulator/config", {"fail_status": 529})
    with pytest.raises(anthropic.OverloadedError) as info:
        ask(client(base_url))
    assert info.value.status_code == 529
    body: Any = info.value.body
    assert body["error"]["type"] == "overloaded_error"
    # No fail_count: the fault stays until cleared.
    with pytest.raises(anthropic.InternalServerError):
        ask(client(base_url))
    call(base_url, "/_emulator/config", {"fail_status": None})
    assert ask(client(base_url)).content
    assert call(base_url, "/_emulator/requests")[2]["by_status"] == {"529": 2, "200": 1}


def test_429_once_is_retried_by_the_sdk(base_url: str) -> None:
    _, _, cfg = call(
        base_url, "/_emulator/config", {"fail_status": 429, "fail_count": 1, "retry_after_s": 0.05}
    )
    assert cfg["fail_status"] == 429 and cfg["fail_count"] == 1
    resp = ask(client(base_url, max_retries=2))
    assert resp.content[0].text == enhance(PROMPT)
    assert call(base_url, "/_emulator/requests")[2]["count"] == 2
    assert call(base_url, "/_emulator/config")[2]["fail_status"] is None


def test_429_carries_retry_after(base_url: str) -> None:
    call(base_url, "/_emulator/config", {"fail_status": 429, "fail_count": 1})
    with pytest.raises(anthropic.RateLimitError) as info:
        ask(client(base_url))
    assert info.value.response.headers["retry-after"] == "1"


@pytest.mark.parametrize(
    ("status", "error_type", "exc"),
    [
        (400, "invalid_request_error", anthropic.BadRequestError),
        (401, "authentication_error", anthropic.AuthenticationError),
        (403, "permission_error", anthropic.PermissionDeniedError),
        (404, "not_found_error", anthropic.NotFoundError),
        (413, "request_too_large", anthropic.APIStatusError),
        (500, "api_error", anthropic.InternalServerError),
    ],
)
def test_error_type_per_status(
    base_url: str, status: int, error_type: str, exc: type[Exception]
) -> None:
    call(base_url, "/_emulator/config", {"fail_status": status, "fail_count": 1})
    with pytest.raises(exc) as info:
        ask(client(base_url))
    assert isinstance(info.value, anthropic.APIStatusError)
    assert info.value.status_code == status
    body: Any = info.value.body
    assert body["error"]["type"] == error_type


def test_fail_type_overrides(base_url: str) -> None:
    call(base_url, "/_emulator/config", {"fail_status": 400, "fail_type": "billing_error"})
    status, _, data = call(base_url, "/v1/messages", {})
    assert status == 400 and data["error"]["type"] == "billing_error"


def test_latency_makes_a_caller_with_a_shorter_deadline_give_up(base_url: str) -> None:
    impatient = client(base_url).with_options(timeout=0.5)
    assert ask(impatient).content
    call(base_url, "/_emulator/config", {"latency_ms": 3000})
    with pytest.raises(anthropic.APITimeoutError):
        ask(impatient)
    assert call(base_url, "/_emulator/config")[2]["latency_ms"] == 3000


def test_control_validation_and_reset(base_url: str) -> None:
    assert call(base_url, "/_emulator/config", {"fail_status": 200})[0] == 422
    assert call(base_url, "/_emulator/config", {"latency_ms": -1})[0] == 422
    assert call(base_url, "/_emulator/config", {"nonsense": 1})[0] == 422
    call(base_url, "/_emulator/config", {"latency_ms": 5, "fail_status": 500})
    _, _, cfg = call(base_url, "/_emulator/reset", {})
    assert cfg == {
        "latency_ms": 0,
        "fail_status": None,
        "fail_count": None,
        "fail_type": None,
        "retry_after_s": 1.0,
    }
    assert call(base_url, "/healthz")[2] == {"status": "ok"}


def test_unknown_route_is_anthropic_404(base_url: str) -> None:
    status, _, data = call(base_url, "/v1/nope")
    assert status == 404 and data["error"]["type"] == "not_found_error"


def test_settings_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_EMULATOR_API_KEY", "sk-ant-a, sk-ant-b")
    monkeypatch.setenv("ANTHROPIC_EMULATOR_LATENCY_MS", "25")
    monkeypatch.setenv("ANTHROPIC_EMULATOR_FAIL_STATUS", "529")
    monkeypatch.setenv("ANTHROPIC_EMULATOR_FAIL_COUNT", "3")
    s = Settings.from_env()
    assert s.api_keys == frozenset({"sk-ant-a", "sk-ant-b"})
    assert (s.latency_ms, s.fail_status, s.fail_count, s.fail_type) == (25, 529, 3, None)
    with running(create_app(s)) as url:
        assert call(url, "/_emulator/config")[2]["fail_count"] == 3


# --- the JSON moderation judgement the prompts service asks for ---------------------------

JUDGE = 'Answer with one JSON object: {"allowed": true or false, "category": null or a code'
REWRITE = JUDGE + ', "prompt": "the rewrite", "reason": "why"}'


def judge(base_url: str, system: str, user: str) -> Any:
    resp = client(base_url).messages.create(
        model=MODEL, max_tokens=400, system=system, messages=[{"role": "user", "content": user}]
    )
    return json.loads(resp.content[0].text)


def test_a_judge_and_rewrite_request_gets_json_keeping_every_word_of_the_draft(
    base_url: str,
) -> None:
    draft = "cinematic film still of vsnkqwrt on a beach, anamorphic lens"
    answer = judge(base_url, REWRITE, f"Trigger word: vsnkqwrt\n<draft>{draft}</draft>")
    assert answer["allowed"] is True and answer["category"] is None
    assert answer["prompt"] == enhance(draft) and answer["reason"]
    # Without a draft, the <prompt> tag; without tags, the whole turn.
    assert judge(base_url, REWRITE, "<prompt>me</prompt>")["prompt"] == enhance("me")
    assert judge(base_url, REWRITE, "just me")["prompt"] == enhance("just me")


def test_a_moderation_only_request_gets_a_verdict_without_a_prompt(base_url: str) -> None:
    assert judge(base_url, JUDGE + "}", "<prompt>me</prompt>") == {
        "allowed": True,
        "category": None,
    }


@pytest.mark.parametrize("system", [JUDGE + "}", REWRITE])
def test_the_marker_word_is_refused(base_url: str, system: str) -> None:
    answer = judge(base_url, system, f"<prompt>me and {REFUSAL_MARKER.upper()}</prompt>")
    assert answer["allowed"] is False and answer["category"] == "violence_gore"
    assert answer.get("prompt", "") == ""


def test_json_is_answered_only_when_the_instructions_ask_for_it(base_url: str) -> None:
    resp = ask(client(base_url), 'me saying "allowed" and "prompt"', system="Enhance it.")
    assert resp.content[0].text == enhance('me saying "allowed" and "prompt"')
    assert answer("Enhance it.", "me") == enhance("me")


def test_the_provider_refusal_marker_stops_with_a_refusal(base_url: str) -> None:
    resp = ask(client(base_url), f"me and {PROVIDER_REFUSAL_MARKER}")
    assert resp.stop_reason == "refusal" and resp.content == []
    assert resp.usage.output_tokens == 0
