"""End-to-end idempotency of the calls that create or charge (ADR 0009).

The gateway passes the caller's ``Idempotency-Key``, scoped to the user and the operation, as
gRPC metadata (:data:`KEY_METADATA`). The owning service stores it, with a fingerprint of the
request, on the row it creates (UNIQUE per user) and, in the transaction of the create and
before any check the first create itself changes (a plan's limit), answers the row that key
already made instead of making a second one. So a retry after any failure (the answer lost on
the way back, a gateway that died before recording it) gets the first result as it stands
now, and is never charged twice. The same key with a different request is refused
(422 ``idempotency_key_reused``). A deduplicated answer says so in trailing metadata
(:data:`REPLAYED_METADATA`), so the caller does not, for instance, audit it twice.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from visiona.kit.errors import InvalidArgument

KEY_METADATA = "x-visiona-idempotency-key"
REPLAYED_METADATA = "visiona-idempotent-replayed"
_VALID_KEY = re.compile(r"[\x21-\x7e]{1,255}")


class _Message(Protocol):
    def SerializeToString(self, *, deterministic: bool = ...) -> bytes: ...


@dataclass(frozen=True)
class RequestKey:
    """A call's idempotency key and the fingerprint of the request that came with it."""

    key: str
    fingerprint: bytes

    def check(self, stored_fingerprint: bytes | memoryview) -> None:
        """Raise unless ``stored_fingerprint`` (of the request that first used the key) is
        this request's."""
        if bytes(stored_fingerprint) != self.fingerprint:
            raise InvalidArgument(
                "this Idempotency-Key was used for a different request",
                code="idempotency_key_reused",
            )


def fingerprint(message: _Message) -> bytes:
    """What makes two calls the same request: the request message's deterministic bytes."""
    return hashlib.sha256(message.SerializeToString(deterministic=True)).digest()


def request_key(metadata: Iterable[Any] | None, message: _Message) -> RequestKey | None:
    """The call's key (from its invocation metadata) and the request's fingerprint, or None
    when the caller sent no key."""
    for name, value in metadata or ():
        if name != KEY_METADATA:
            continue
        key = value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
        if not _VALID_KEY.fullmatch(key):
            raise InvalidArgument(
                "the idempotency key must be 1-255 printable ASCII characters",
                code="invalid_idempotency_key",
            )
        return RequestKey(key, fingerprint(message))
    return None


class _Context(Protocol):
    def set_trailing_metadata(self, trailing_metadata: Any) -> None: ...


def mark_replayed(context: _Context) -> None:
    """Say in the answer's trailing metadata that it is an earlier call's result."""
    context.set_trailing_metadata(((REPLAYED_METADATA, "true"),))


def was_replayed(trailing: Iterable[Any] | None) -> bool:
    """Whether a call's trailing metadata says its answer was an earlier call's result."""
    return any(name == REPLAYED_METADATA and value == "true" for name, value in trailing or ())
