"""Local stand-in for the OpenAI Chat Completions API (``POST /v1/chat/completions``). Dev and
test only.

Point the real SDK at it: ``openai.OpenAI(api_key="sk-openai-local",
base_url="http://127.0.0.1:8105/v1")`` (OpenAI's base URL includes ``/v1``). Answers are the
Anthropic emulator's (:func:`visiona.emulators.anthropic.answer`): a deterministic enhancement
of the last user message, or a JSON moderation judgement when the system message asks for one;
``finish_reason: "content_filter"`` for a prompt containing the provider-refusal marker.

What it honours of the real API: bearer auth (``invalid_api_key``), ``messages`` with string or
text-part content and the system/developer/user/assistant roles, ``max_tokens`` and
``max_completion_tokens`` (the answer is cut, ``finish_reason: "length"``), ``n``,
``response_format`` ``{"type": "json_object"}`` (refused unless a message mentions JSON, as the
real API does), ``usage``, the ``x-request-id`` header and error bodies
``{"error": {"message", "type", "param", "code"}}``.

Fault switches: the same as the Anthropic emulator's (``/_emulator/config``, ``/reset``,
``/requests``), start-up values from ``OPENAI_EMULATOR_*``.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from visiona.emulators import _server
from visiona.emulators import anthropic as _anthropic
from visiona.emulators.anthropic import (
    PROVIDER_REFUSAL_MARKER,
    EmulatorState,
    answer,
    chat_app,
    count_tokens,
    random_id,
)

DEFAULT_PORT = 8105
DEFAULT_API_KEY = "sk-openai-local"
KEY_PREFIX = "sk-"
ROLES = ("system", "developer", "user", "assistant")

# (type, code) per status, as the real API names them.
ERRORS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    409: ("invalid_request_error", None),
    422: ("invalid_request_error", None),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    502: ("server_error", None),
    503: ("server_error", None),
}


class Settings(_anthropic.Settings):
    """Start-up configuration. ``api_keys=None`` accepts any key starting with ``sk-``."""

    @classmethod
    def from_env(cls, prefix: str = "OPENAI_EMULATOR_") -> Settings:
        return super().from_env(prefix)


class _BadRequest(Exception):
    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


_BY_STATUS = object()


def _error(
    status: int,
    message: str,
    error_type: str | None = None,
    *,
    code: str | object | None = _BY_STATUS,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    default_type, default_code = ERRORS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None)
    )
    body = {
        "error": {
            "message": message,
            "type": error_type or default_type,
            "param": param,
            "code": default_code if code is _BY_STATUS else code,
        }
    }
    return JSONResponse(
        body,
        status_code=status,
        headers={"x-request-id": random_id("req_", 32), **(headers or {})},
    )


def _text_of(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list) and content:
        parts = []
        for i, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text":
                raise _BadRequest("the emulator supports only text content parts", f"{where}[{i}]")
            text = part.get("text")
            if not isinstance(text, str):
                raise _BadRequest("text must be a string", f"{where}[{i}].text")
            parts.append(text)
        return "\n".join(parts)
    raise _BadRequest("content must be a string or a non-empty array of parts", where)


def _parse(body: Any) -> tuple[str, list[tuple[str, str]], int | None, int]:
    """Validate a request; return (model, [(role, text)], max_tokens, n)."""
    if not isinstance(body, dict):
        raise _BadRequest("We could not parse the JSON body of your request.")
    model, messages = body.get("model"), body.get("messages")
    if not isinstance(model, str) or not model:
        raise _BadRequest("you must provide a model parameter", "model")
    if body.get("stream"):
        raise _BadRequest("the emulator does not support streaming", "stream")
    if not isinstance(messages, list) or not messages:
        raise _BadRequest("[] is too short - 'messages'", "messages")
    turns = []
    for i, msg in enumerate(messages):
        role = msg.get("role") if isinstance(msg, dict) else None
        if role not in ROLES:
            raise _BadRequest(
                f"Invalid value: '{role}'. Supported values are: {', '.join(ROLES)}.",
                f"messages[{i}].role",
            )
        turns.append((str(role), _text_of(msg.get("content"), f"messages[{i}].content")))
    if not any(role == "user" for role, _ in turns):
        raise _BadRequest("messages must contain a user message", "messages")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
    ):
        raise _BadRequest("max_tokens must be an integer >= 1", "max_completion_tokens")
    n = body.get("n", 1)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 8:
        raise _BadRequest("n must be an integer between 1 and 8", "n")
    response_format = body.get("response_format") or {"type": "text"}
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind not in ("text", "json_object"):
        raise _BadRequest("the emulator supports response_format text and json_object")
    if kind == "json_object" and not any("json" in text.casefold() for _, text in turns):
        raise _BadRequest(
            "'messages' must contain the word 'json' in some form, to use 'response_format' "
            "of type 'json_object'.",
            "messages",
        )
    return model, turns, max_tokens, n


def _api_key(request: Request) -> str:
    auth = request.headers.get("authorization", "")
    return auth[7:].strip() if auth[:7].lower() == "bearer " else ""


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the emulator app; ``settings`` default to :meth:`Settings.from_env`."""
    state = EmulatorState(settings or Settings.from_env())

    async def chat_completions(request: Request, body: Any) -> JSONResponse:
        key = _api_key(request)
        if not key:
            return _error(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                code=None,
            )
        if not state.accepts(key, KEY_PREFIX):
            return _error(401, "Incorrect API key provided.")
        try:
            model, turns, max_tokens, n = _parse(body)
        except _BadRequest as exc:
            return _error(400, str(exc), param=exc.param)
        system = "\n".join(t for role, t in turns if role in ("system", "developer"))
        last_user = next(t for role, t in reversed(turns) if role == "user")
        text: str | None = answer(system, last_user)
        finish_reason, completion_tokens = "stop", count_tokens(text or "")
        if PROVIDER_REFUSAL_MARKER in last_user.casefold():
            text, finish_reason, completion_tokens = None, "content_filter", 0
        elif text and max_tokens is not None and completion_tokens > max_tokens:
            text = " ".join(text.split()[: max(1, max_tokens * 3 // 4)])
            finish_reason, completion_tokens = "length", max_tokens
        prompt_tokens = max(1, sum(count_tokens(t) for _, t in turns))
        choice: dict[str, Any] = {
            "message": {"role": "assistant", "content": text, "refusal": None, "annotations": []},
            "logprobs": None,
            "finish_reason": finish_reason,
        }
        return JSONResponse(
            {
                "id": random_id("chatcmpl-", 29),
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": i, **choice} for i in range(n)],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens * n,
                    "total_tokens": prompt_tokens + completion_tokens * n,
                    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                    "completion_tokens_details": {
                        "reasoning_tokens": 0,
                        "audio_tokens": 0,
                        "accepted_prediction_tokens": 0,
                        "rejected_prediction_tokens": 0,
                    },
                },
                "service_tier": "default",
                "system_fingerprint": "fp_emulator",
            },
            headers={"x-request-id": random_id("req_", 32)},
        )

    app = chat_app(
        "OpenAI emulator",
        state,
        "/v1/chat/completions",
        chat_completions,
        lambda fault: _error(fault.status, fault.message, fault.type, headers=fault.headers),
    )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return _error(
                404, f"Invalid URL ({request.method} {request.url.path})", code="unknown_url"
            )
        return _error(exc.status_code, str(exc.detail))

    return app


serve = _server.Foreground(create_app, DEFAULT_PORT)


__all__ = ["DEFAULT_API_KEY", "DEFAULT_PORT", "Settings", "create_app", "serve"]
