"""Local stand-in for the Anthropic Messages API (``POST /v1/messages``). Dev and test only.

Point the real SDK at it: ``anthropic.Anthropic(api_key="sk-ant-local",
base_url="http://127.0.0.1:8101")``. The reply is a deterministic "prompt enhancement": the last
user message, every word kept, followed by photographic details picked from a hash of it; or,
when the instructions ask for a JSON moderation judgement, a JSON answer (see :func:`answer`).

Fault switches (runtime, outside ``/v1``): ``GET|POST /_emulator/config`` with ``latency_ms``,
``fail_status``, ``fail_count`` (how many upcoming calls fail; null = all while set),
``fail_type`` (overrides the error type) and ``retry_after_s``; ``POST /_emulator/reset``;
``GET /_emulator/requests`` (call counter). Start-up values come from ``ANTHROPIC_EMULATOR_*``
environment variables, see :meth:`Settings.from_env`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import os
import re
import secrets
import string
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Self

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from visiona.emulators import _server

DEFAULT_PORT = 8101
DEFAULT_API_KEY = "sk-ant-local"
KEY_PREFIX = "sk-ant-"
# A prompt containing this is refused by the emulated moderation judgement (see answer()).
REFUSAL_MARKER = "forbidden-test-content"
# A prompt containing this is declined by the emulated provider's own safety system: Claude's
# ``stop_reason: "refusal"`` with no content (the OpenAI emulator: ``content_filter``).
PROVIDER_REFUSAL_MARKER = "provider-refusal-test-content"

# Error type per status, as the real API names them (docs "Errors" page).
ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "invalid_request_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}

_ALNUM = string.ascii_letters + string.digits

_LIGHTING = (
    "soft golden-hour light",
    "diffused overcast daylight",
    "dramatic Rembrandt lighting",
    "clean studio softbox lighting",
    "warm window light",
    "cinematic rim lighting",
    "moody low-key lighting",
    "bright natural midday sun",
)
_LENS = (
    "shot on an 85mm f/1.4 lens",
    "shot on a 50mm f/1.8 prime",
    "shot on a 35mm f/2 lens",
    "shot on a 135mm f/2 telephoto",
    "shot on a 24mm wide-angle lens",
)
_COMPOSITION = (
    "rule-of-thirds composition",
    "centered symmetrical framing",
    "shallow depth of field with creamy bokeh",
    "eye-level medium shot",
    "close-up portrait framing",
    "environmental portrait with leading lines",
)
_FINISH = (
    "natural skin texture",
    "subtle film grain",
    "high dynamic range",
    "true-to-life colour grading",
    "tack-sharp focus on the eyes",
)


def _env_int(name: str) -> int | None:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else None


@dataclass(frozen=True)
class Settings:
    """Start-up configuration. ``api_keys=None`` accepts any key starting with ``sk-ant-``."""

    api_keys: frozenset[str] | None = None
    latency_ms: int = 0
    fail_status: int | None = None
    fail_count: int | None = None
    fail_type: str | None = None
    retry_after_s: float = 1.0

    @classmethod
    def from_env(cls, prefix: str = "ANTHROPIC_EMULATOR_") -> Self:
        """Read ``<prefix>API_KEY`` (comma-separated), ``_LATENCY_MS``, ``_FAIL_STATUS``,
        ``_FAIL_COUNT``, ``_FAIL_TYPE`` and ``_RETRY_AFTER_S``."""
        keys = os.environ.get(f"{prefix}API_KEY", "")
        key_set = frozenset(k.strip() for k in keys.split(",") if k.strip())
        retry = os.environ.get(f"{prefix}RETRY_AFTER_S", "").strip()
        return cls(
            api_keys=key_set or None,
            latency_ms=_env_int(f"{prefix}LATENCY_MS") or 0,
            fail_status=_env_int(f"{prefix}FAIL_STATUS"),
            fail_count=_env_int(f"{prefix}FAIL_COUNT"),
            fail_type=os.environ.get(f"{prefix}FAIL_TYPE") or None,
            retry_after_s=float(retry) if retry else 1.0,
        )


class ConfigPatch(BaseModel):
    """Body of ``POST /_emulator/config``; only the fields sent are changed."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: int = Field(default=0, ge=0, le=600_000)
    fail_status: int | None = Field(default=None, ge=400, le=599)
    fail_count: int | None = Field(default=None, ge=0)
    fail_type: str | None = None
    retry_after_s: float = Field(default=1.0, ge=0, le=3600)


@dataclass
class EmulatorState:
    """The fault switches and the call counter (the OpenAI emulator shares them)."""

    settings: Settings
    latency_ms: int = 0
    fail_status: int | None = None
    fail_remaining: int | None = None  # None: every call fails while fail_status is set
    fail_type: str | None = None
    retry_after_s: float = 1.0
    count: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    last_body: Any = None

    def reset(self) -> None:
        s = self.settings
        self.latency_ms, self.fail_status, self.fail_type = s.latency_ms, s.fail_status, s.fail_type
        self.fail_remaining, self.retry_after_s = s.fail_count, s.retry_after_s
        self.count, self.by_status, self.last_body = 0, {}, None

    def config(self) -> dict[str, Any]:
        return {
            "latency_ms": self.latency_ms,
            "fail_status": self.fail_status,
            "fail_count": self.fail_remaining,
            "fail_type": self.fail_type,
            "retry_after_s": self.retry_after_s,
        }

    def apply(self, patch: ConfigPatch) -> dict[str, Any]:
        """Change the switches ``patch`` sends; return the resulting configuration."""
        sent = patch.model_fields_set
        if "latency_ms" in sent:
            self.latency_ms = patch.latency_ms
        if "retry_after_s" in sent:
            self.retry_after_s = patch.retry_after_s
        if "fail_type" in sent:
            self.fail_type = patch.fail_type
        if "fail_status" in sent:
            self.fail_status = patch.fail_status
            # A new fault starts a fresh count; without fail_count it lasts until cleared.
            self.fail_remaining = patch.fail_count
        elif "fail_count" in sent:
            self.fail_remaining = patch.fail_count
        if self.fail_status is None:
            self.fail_remaining = None
        return self.config()

    def take_fault(self) -> int | None:
        """The status this call must fail with, if any; consumes one from ``fail_count``."""
        if self.fail_status is None:
            return None
        status = self.fail_status
        if self.fail_remaining is not None:
            self.fail_remaining -= 1
            if self.fail_remaining <= 0:
                # Exhausted: clear the switch so GET /_emulator/config shows the truth.
                self.fail_status, self.fail_remaining, self.fail_type = None, None, None
        return status

    async def receive(self, request: Request) -> tuple[Any, Fault | None]:
        """Count the call, keep its JSON body (None when it is not JSON) and wait ``latency_ms``;
        answer the body and the injected failure to answer with, if any."""
        self.count += 1
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        self.last_body = body
        if self.latency_ms:
            await asyncio.sleep(self.latency_ms / 1000)
        fault_type = self.fail_type
        status = self.take_fault()
        if status is None:
            return body, None
        headers = {}
        if status == 429:
            # Real API: whole seconds in retry-after. retry-after-ms is what the SDK reads
            # first, so tests can ask for short waits without a 1 s sleep per retry.
            headers["retry-after"] = str(max(1, math.ceil(self.retry_after_s)))
            headers["retry-after-ms"] = str(round(self.retry_after_s * 1000))
        return body, Fault(status, fault_type, headers)

    def answered(self, response: JSONResponse) -> JSONResponse:
        """Count ``response`` by its status (``GET /_emulator/requests``)."""
        status = str(response.status_code)
        self.by_status[status] = self.by_status.get(status, 0) + 1
        return response

    def accepts(self, key: str, prefix: str) -> bool:
        """One of the configured keys; with none configured, any key starting with ``prefix``."""
        keys = self.settings.api_keys
        return key.startswith(prefix) if keys is None else key in keys


@dataclass(frozen=True)
class Fault:
    """An injected failure: the status, the error type (None: the status's own) and headers."""

    status: int
    type: str | None
    headers: dict[str, str]

    @property
    def message(self) -> str:
        return f"Injected failure ({self.status}) by the emulator"


def chat_app(
    title: str,
    state: EmulatorState,
    path: str,
    handle: Callable[[Request, Any], Awaitable[JSONResponse]],
    fault_response: Callable[[Fault], JSONResponse],
) -> FastAPI:
    """A chat emulator's app (this one's, the OpenAI one's): ``POST path`` answered by
    ``handle(request, body)``, every call counted, delayed and failed (``fault_response``) as
    the switches say, and the switches and the call counter under ``/_emulator``. ``state``
    starts from its settings."""
    state.reset()
    app = _server.new_app(title)
    app.state.emulator = state

    @app.post(path)
    async def endpoint(request: Request) -> JSONResponse:
        body, fault = await state.receive(request)
        response = fault_response(fault) if fault is not None else await handle(request, body)
        return state.answered(response)

    @app.get("/_emulator/config")
    async def get_config() -> dict[str, Any]:
        return state.config()

    @app.post("/_emulator/config")
    async def set_config(patch: ConfigPatch) -> dict[str, Any]:
        return state.apply(patch)

    @app.post("/_emulator/reset")
    async def reset() -> dict[str, Any]:
        state.reset()
        return state.config()

    @app.get("/_emulator/requests")
    async def requests() -> dict[str, Any]:
        return {"count": state.count, "by_status": state.by_status, "last_body": state.last_body}

    return app


class _BadRequest(Exception):
    pass


def random_id(prefix: str, n: int = 24) -> str:
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(n))


def count_tokens(text: str) -> int:
    """Rough, deterministic token estimate: about 4 tokens per 3 words."""
    return math.ceil(len(text.split()) * 4 / 3)


def enhance(prompt: str) -> str:
    """The emulator's deterministic enhancement of ``prompt`` (every word of it kept)."""
    words = " ".join(prompt.split()).rstrip(" .,;:!")
    d = hashlib.sha256(words.encode()).digest()
    details = (
        _LIGHTING[d[0] % len(_LIGHTING)],
        _LENS[d[1] % len(_LENS)],
        _COMPOSITION[d[2] % len(_COMPOSITION)],
        _FINISH[d[3] % len(_FINISH)],
    )
    return f"{words}, {', '.join(details)}, highly detailed professional photograph"


def _tagged(text: str, tag: str) -> str | None:
    found = re.findall(rf"<{tag}>(.*?)</{tag}>", text, re.DOTALL)
    return found[-1].strip() if found else None


def answer(system: str, user: str) -> str:
    """The emulator's deterministic answer to a conversation whose last user turn is ``user``.

    Plain requests get :func:`enhance`. A request whose system instructions ask for a JSON
    object with an ``"allowed"`` field (a moderation judgement) gets one: refused, with category
    ``violence_gore``, when the user turn contains :data:`REFUSAL_MARKER`; else allowed, and
    when the instructions also ask for a ``"prompt"``, with the enhancement of the text inside
    the last ``<draft>`` (else ``<prompt>``) tag, or of the whole turn: every word kept, the
    trigger word and the style pack's words included.
    """
    if '"allowed"' not in system:
        return enhance(user)
    rewrite = '"prompt"' in system
    if REFUSAL_MARKER in user.casefold():
        refusal: dict[str, Any] = {"allowed": False, "category": "violence_gore"}
        if rewrite:
            refusal |= {"prompt": "", "reason": "The prompt asks for content the policy forbids."}
        return json.dumps(refusal)
    if not rewrite:
        return json.dumps({"allowed": True, "category": None})
    source = _tagged(user, "draft") or _tagged(user, "prompt") or user
    return json.dumps(
        {
            "allowed": True,
            "category": None,
            "prompt": enhance(source),
            "reason": "Added lighting, lens and composition details to the draft.",
        }
    )


def _text_of(content: Any, where: str) -> str:
    """Text of a ``content``/``system`` value: a string or a list of text blocks."""
    if isinstance(content, str):
        if not content.strip():
            raise _BadRequest(f"{where}: text content must be non-empty")
        return content
    if isinstance(content, list) and content:
        parts = []
        for i, block in enumerate(content):
            if not isinstance(block, dict) or block.get("type") != "text":
                raise _BadRequest(f"{where}.{i}: the emulator supports only text content blocks")
            text = block.get("text")
            if not isinstance(text, str) or not text.strip():
                raise _BadRequest(f"{where}.{i}.text: text content blocks must be non-empty")
            parts.append(text)
        return "\n".join(parts)
    raise _BadRequest(f"{where}: must be a string or a non-empty list of content blocks")


def _parse(body: Any) -> tuple[str, int, list[tuple[str, str]], str]:
    """Validate a Messages request; return (model, max_tokens, [(role, text)], system)."""
    if not isinstance(body, dict):
        raise _BadRequest("request body must be a JSON object")
    model, max_tokens, messages = body.get("model"), body.get("max_tokens"), body.get("messages")
    if not isinstance(model, str) or not model:
        raise _BadRequest("model: Field required (a non-empty string)")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise _BadRequest("max_tokens: Field required (an integer >= 1)")
    if body.get("stream"):
        raise _BadRequest("stream: the emulator does not support streaming")
    if not isinstance(messages, list) or not messages:
        raise _BadRequest("messages: Field required (a non-empty list)")
    turns = []
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or msg.get("role") not in ("user", "assistant"):
            raise _BadRequest(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        turns.append((str(msg["role"]), _text_of(msg.get("content"), f"messages.{i}.content")))
    system = body.get("system")
    system_text = "" if system is None else _text_of(system, "system")
    if not any(role == "user" for role, _ in turns):
        raise _BadRequest("messages: at least one message must have the 'user' role")
    return model, max_tokens, turns, system_text


def _error(
    status: int, message: str, error_type: str | None = None, **headers: str
) -> JSONResponse:
    if error_type is None:
        error_type = ERROR_TYPES.get(
            status, "api_error" if status >= 500 else "invalid_request_error"
        )
    request_id = random_id("req_")
    body = {
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": request_id,
    }
    return JSONResponse(body, status_code=status, headers={"request-id": request_id, **headers})


def _api_key(request: Request) -> str:
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return request.headers.get("x-api-key", "").strip()


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the emulator app; ``settings`` default to :meth:`Settings.from_env`."""
    state = EmulatorState(settings or Settings.from_env())

    async def messages(request: Request, body: Any) -> JSONResponse:
        key = _api_key(request)
        if not key:
            return _error(401, "x-api-key header is required")
        if not state.accepts(key, KEY_PREFIX):
            return _error(401, "invalid x-api-key")
        try:
            model, max_tokens, turns, system = _parse(body)
        except _BadRequest as exc:
            return _error(400, str(exc))
        last_user = next(t for role, t in reversed(turns) if role == "user")
        text = answer(system, last_user)
        stop_reason, output_tokens = "end_turn", count_tokens(text)
        if PROVIDER_REFUSAL_MARKER in last_user.casefold():
            text, stop_reason, output_tokens = "", "refusal", 0
        elif output_tokens > max_tokens:
            # Cut like the real API does when the budget runs out mid-answer.
            text = " ".join(text.split()[: max(1, max_tokens * 3 // 4)])
            stop_reason, output_tokens = "max_tokens", max_tokens
        input_tokens = max(1, count_tokens(system) + sum(count_tokens(t) for _, t in turns))
        request_id = random_id("req_")
        return JSONResponse(
            {
                "id": random_id("msg_"),
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [{"type": "text", "text": text}] if text else [],
                "stop_reason": stop_reason,
                "stop_sequence": None,
                "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
            },
            headers={"request-id": request_id},
        )

    app = chat_app(
        "Anthropic emulator",
        state,
        "/v1/messages",
        messages,
        lambda fault: _error(fault.status, fault.message, fault.type, **fault.headers),
    )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))

    return app


serve = _server.Foreground(create_app, DEFAULT_PORT)


__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_PORT",
    "PROVIDER_REFUSAL_MARKER",
    "REFUSAL_MARKER",
    "ConfigPatch",
    "EmulatorState",
    "Fault",
    "Settings",
    "answer",
    "chat_app",
    "count_tokens",
    "create_app",
    "enhance",
    "random_id",
    "serve",
]
