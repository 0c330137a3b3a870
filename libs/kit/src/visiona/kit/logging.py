"""structlog JSON logs carrying request id and trace id, with secrets redacted and users
pseudonymised.

No log line names a user: a ``user_id`` (``owner``) field becomes ``user_ref`` (``owner_ref``), a keyed hash
whose key is drawn at random when the process starts and never leaves its memory. Lines of one
process about one user still correlate (and a trace id ties a request across services), but
once the process is gone nobody can go from a user id to their log lines, so an erased user
leaves nothing in the logs that points at them. Email addresses are dropped.

Nor does a line carry an id that leads to a user: resource ids (UUIDs: models, photos,
generations, request paths), provider ids (Stripe's ``cus_…``, ``sub_…``, Clerk's ``user_…``,
Replicate's training and prediction ids and versions) and URL query strings are replaced, in
every text of the line (the message, fields, exception traces), by ``ref-<hash>`` under the same
process key (:func:`scrub_identifiers`). Only ids that name no user's resource and tie work
across services stay readable: request, trace, span and event ids.

Standard-library loggers (uvicorn, aio-pika, grpc) go through the same processors, so every
line a process writes is one JSON object. Provider SDKs and HTTP clients (stripe, httpx,
botocore, replicate, anthropic, openai, …) log each request's URL at INFO: they are held at
WARNING, and what they still say is scrubbed like the rest.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import sys
from collections.abc import Callable, MutableMapping
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


# How deep a logged value is walked; a container nested deeper is replaced, not logged.
_MAX_DEPTH = 4
TOO_DEEP = "[too deep]"


def _walk(value: Any, text: Callable[[str], str], hide: Callable[[str], bool], depth: int) -> Any:
    """``value`` with ``text`` applied to every string in it and the values under keys
    ``hide`` names redacted."""
    if isinstance(value, str):
        return text(value)
    if not isinstance(value, dict | list | tuple):
        return value
    if depth > _MAX_DEPTH:
        return TOO_DEEP
    if isinstance(value, dict):
        return {
            k: REDACTED if isinstance(k, str) and hide(k) else _walk(v, text, hide, depth + 1)
            for k, v in value.items()
        }
    return [_walk(v, text, hide, depth + 1) for v in value]


def _redact(value: Any) -> Any:
    return _walk(value, redact_text, lambda key: _SECRET_KEYS.search(key) is not None, 0)


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


# Chatty libraries: their warnings matter; their per-request lines (a provider's URL names the
# customer, the training, the model) and per-frame debug lines do not.
QUIET_LOGGERS = (
    "aiormq",
    "aio_pika",
    "uvicorn.access",
    "httpx",
    "httpcore",
    "urllib3",
    "stripe",
    "botocore",
    "boto3",
    "s3transfer",
    "minio",
    "replicate",
    "anthropic",
    "openai",
)

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


# Ids that tie work together across services and name no user's resource: kept as they are.
_CORRELATION_KEYS = frozenset(
    {"request_id", "trace_id", "span_id", "event_id", "message_id", "user_ref", "owner_ref"}
)
# Keys the logging machinery itself sets (no user data).
_PLAIN_KEYS = frozenset({"timestamp", "level", "log_level", "logger", "service"})
_IDENTIFIERS = re.compile(
    "|".join(
        (
            # UUIDs: our resources (models, photos, generations, images, exports, …).
            r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
            # Provider ids with a type prefix: cus_…, sub_…, cs_test_…, evt_…, user_… (Clerk);
            # random, so never all lowercase letters as our own names are.
            r"\b[a-z]{2,6}_(?:test_|live_)?(?=[a-z]*[A-Z0-9])[A-Za-z0-9]{8,}\b",
            # Long lowercase tokens: Replicate training and prediction ids, hex versions,
            # UUIDs without dashes (a model's name at Replicate).
            r"(?<![A-Za-z0-9])[a-z0-9]{20,}(?![A-Za-z0-9])",
            # Addresses; a URL's query (presigned URLs, ids in parameters).
            r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+",
            r"(?<=\?)[^\s'\"<>]+",
        )
    )
)


def _ref(match: re.Match[str]) -> str:
    digest = hmac.new(_PROCESS_KEY, b"id:" + match.group(0).encode(), hashlib.sha256)
    return "ref-" + digest.hexdigest()[:12]


def scrub_text(text: str) -> str:
    """``text`` with every identifier that could lead to a user replaced by its ``ref-``."""
    return _IDENTIFIERS.sub(_ref, text)


def _scrub(value: Any) -> Any:
    return _walk(value, scrub_text, lambda key: False, 0)


def scrub_identifiers(
    _: Any, __: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Processor: ids of users' resources and provider ids become per-process ``ref-`` hashes
    in every text of the line but the correlation ids."""
    for key in list(event_dict):
        if key in _CORRELATION_KEYS or key in _PLAIN_KEYS:
            continue
        value = event_dict[key]
        if isinstance(value, str | dict | list | tuple):
            event_dict[key] = _scrub(value)
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
        scrub_identifiers,
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
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)  # type: ignore[no-any-return]
