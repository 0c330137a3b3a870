"""structlog JSON logs carrying request id and trace id, with secrets redacted and users
pseudonymised.

No log line names a user: a ``user_id`` (``owner``) field becomes ``user_ref`` (``owner_ref``), a keyed hash
whose key is drawn at random when the process starts and never leaves its memory. Lines of one
process about one user still correlate (and a trace id ties a request across services), but
once the process is gone nobody can go from a user id to their log lines, so an erased user
leaves nothing in the logs that points at them. Email addresses are dropped.

Standard-library loggers (uvicorn, aio-pika, grpc) go through the same processors, so every
line a process writes is one JSON object.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog
from opentelemetry import trace

from visiona.kit.settings import KitSettings

_SECRET_KEYS = re.compile(
    r"pass(word)?|secret|token|authorization|api[_-]?key|cookie|signature|dsn|credential",
    re.IGNORECASE,
)
# Bearer tokens, JWTs and URL credentials can hide inside free text (an exception message).
_SECRET_VALUES = [
    (re.compile(r"(?i)bearer\s+[A-Za-z0-9._~+/=-]+"), "Bearer [redacted]"),
    (re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"), "[redacted-jwt]"),
    (re.compile(r"(\w+://[^:/\s@]+:)[^@\s]+@"), r"\1[redacted]@"),
    (re.compile(r"\b(sk|rk|whsec|sk-ant|r8)_[A-Za-z0-9_-]{6,}"), "[redacted-key]"),
]
REDACTED = "[redacted]"


def redact_text(text: str) -> str:
    for pattern, replacement in _SECRET_VALUES:
        text = pattern.sub(replacement, text)
    return text


def _redact(value: Any, depth: int = 0) -> Any:
    if depth > 4:
        return value
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {
            k: REDACTED if isinstance(k, str) and _SECRET_KEYS.search(k) else _redact(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_redact(v, depth + 1) for v in value]
    return value


def redact_secrets(
    _: Any, __: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Processor: blank values under secret-looking keys and secret-looking substrings."""
    for key in list(event_dict):
        value = event_dict[key]
        if _SECRET_KEYS.search(key):
            event_dict[key] = REDACTED
        elif isinstance(value, str | dict | list | tuple):
            event_dict[key] = _redact(value)
    return event_dict


_PROCESS_KEY = os.urandom(32)
_USER_KEYS = {"user_id": "user_ref", "owner": "owner_ref"}
_PERSONAL_KEYS = ("email", "email_address")


def user_ref(user_id: str) -> str:
    """The pseudonym logs use for ``user_id`` in this process."""
    return hmac.new(_PROCESS_KEY, user_id.encode(), hashlib.sha256).hexdigest()[:16]


def pseudonymise_users(
    _: Any, __: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Processor: user ids become ``user_ref`` pseudonyms; personal fields are dropped."""
    for key, ref in _USER_KEYS.items():
        value = event_dict.pop(key, None)
        if isinstance(value, str) and value:
            event_dict[ref] = user_ref(value)
    for key in _PERSONAL_KEYS:
        if key in event_dict:
            event_dict[key] = REDACTED
    return event_dict


def add_trace_ids(
    _: Any, __: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Processor: the current OpenTelemetry trace and span ids, when a span is recording."""
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        event_dict.setdefault("trace_id", format(ctx.trace_id, "032x"))
        event_dict.setdefault("span_id", format(ctx.span_id, "016x"))
    return event_dict


def configure_logging(settings: KitSettings) -> None:
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_trace_ids,
        structlog.processors.format_exc_info,
        redact_secrets,
        pseudonymise_users,
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if settings.log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    structlog.contextvars.bind_contextvars(service=settings.service_name)
    # Chatty libraries: their warnings matter, their per-frame debug lines do not.
    for name in ("aiormq", "aio_pika", "uvicorn.access", "httpx", "httpcore"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)  # type: ignore[no-any-return]
