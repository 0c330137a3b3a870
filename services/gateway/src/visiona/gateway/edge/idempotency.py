"""``Idempotency-Key`` on every POST under ``/v1``.

Every POST of the API creates or charges something, so all of them honour the header:

- ``POST /v1/photos/uploads`` and ``POST /v1/photos/{id}/complete`` (an upload slot, a photo)
- ``POST /v1/models`` and ``POST /v1/models/{id}/cancel`` (a training, its credits)
- ``POST /v1/generations`` and ``POST /v1/generations/{id}/cancel`` (a generation, credits)
- ``POST /v1/billing/checkout`` and ``POST /v1/billing/portal`` (Stripe sessions)
- ``POST /v1/prompts/enhance`` (an LLM call, kept as an enhancement)
- ``POST /v1/me/export`` (an export of the account)

Without the header a request is handled as before. With it, per signed-in user and key:

- the first request is recorded as in progress, runs, and its response is stored (any status
  but 5xx, 408 and 429: those are transient, so the key is given back and a retry runs);
- a request with the same key and the same method, path, query and body gets the stored
  response, byte for byte, with ``Idempotent-Replayed: true``;
- the same key with a different request is 422 ``idempotency_key_reused``;
- the same key while the first is still running is 409 ``idempotency_key_in_progress`` with
  ``Retry-After: 1`` (if that gateway dies, a retry takes the key over after
  ``GATEWAY_IDEMPOTENCY_LEASE_S``), except on the routes in :data:`END_TO_END`, below;
- a key that is not 1-255 printable ASCII characters is 400 ``invalid_idempotency_key``.

End to end (ADR 0009): on the routes that create or charge through a service (a model, a
generation, a Checkout Session, an export), the key is also handed to the route, scoped to the
user and the route (:func:`scoped_key`), and the route passes it on: the owning service
deduplicates on it in the transaction of the create. A key recorded here only as in progress
(its gateway died, or the answer was lost after the service committed) therefore does not
block the retry: the retry takes the claim over at once and the service answers it the first
result, which is then recorded. Two requests in flight at once both reach the service, which
serialises them on the key, so both get the one resource.

Keys are scoped per user (another user's identical key is another key) and kept for
``GATEWAY_IDEMPOTENCY_TTL_S`` (24 h). The caller is the one :func:`principal_of` verified;
a request without a valid session is left to the route, which answers 401.

Unlike rate limits, idempotency fails closed: when the database cannot record the key the
request is refused with 503 rather than run without the guarantee the client asked for.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import uuid

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from visiona.gateway.config import GatewaySettings
from visiona.gateway.edge.auth import principal_of
from visiona.gateway.edge.problems import RETRY_AFTER_S, send_problem
from visiona.gateway.repository.idempotency_key import IdempotencyStore
from visiona.kit.logging import get_logger

log = get_logger(__name__)

HEADER = b"idempotency-key"
# POSTs whose owning service deduplicates on the key itself, in the transaction of the create.
END_TO_END = frozenset({"/v1/models", "/v1/generations", "/v1/billing/checkout", "/v1/me/export"})
# Where the scoped key waits for the route (``request.state.idempotency_key``).
STATE_KEY = "idempotency_key"
REPLAYED = (b"idempotent-replayed", b"true")
_VALID_KEY = re.compile(rb"[\x20-\x7e]{1,255}")
# What a replay repeats of the first response's headers: those that describe its body.
# Everything else is the edge's to add again (request id, CORS, security, rate limits).
STORED_HEADERS = frozenset(
    {
        b"content-type",
        b"content-length",
        b"content-language",
        b"location",
        b"cache-control",
        b"etag",
        b"last-modified",
        b"link",
    }
)


def is_transient(status: int) -> bool:
    """An answer a retry may change: not stored, so the retry runs."""
    return status >= 500 or status in (408, 429)


def fingerprint(method: str, path: str, query: bytes, body: bytes) -> bytes:
    """What makes two requests the same request."""
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query, body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.digest()


def scoped_key(user_id: str, method: str, path: str, key: str) -> str:
    """The key a service stores: the client's key, for this user and this operation only."""
    digest = hashlib.sha256()
    for part in (user_id, method, path, key):
        encoded = part.encode()
        digest.update(len(encoded).to_bytes(8, "big"))
        digest.update(encoded)
    return digest.hexdigest()


def scoped_key_of(request: Request) -> str | None:
    """The scoped key the middleware handed this request's route, if any (END_TO_END)."""
    key = getattr(request.state, STATE_KEY, None)
    return key if isinstance(key, str) else None


class IdempotencyMiddleware:
    """Pure ASGI: it reads the body before the route (to fingerprint it) and holds the
    route's response until it is stored, so a client that has seen a response can always
    replay it."""

    def __init__(self, app: ASGIApp, *, settings: GatewaySettings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or not scope["path"].startswith("/v1/")
        ):
            await self.app(scope, receive, send)
            return
        keys = [value for name, value in scope["headers"] if name == HEADER]
        if not keys:
            await self.app(scope, receive, send)
            return
        if len(keys) > 1 or not _VALID_KEY.fullmatch(keys[0]):
            await send_problem(
                scope,
                receive,
                send,
                400,
                "invalid_idempotency_key",
                "Idempotency-Key must be one value of 1-255 printable ASCII characters",
            )
            return
        principal = await principal_of(scope)
        if principal is None:
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            return  # the client went away
        user_id, key = principal.user_id, keys[0].decode("ascii")
        end_to_end = scope["path"] in END_TO_END
        fp = fingerprint(scope["method"], scope["path"], scope.get("query_string", b""), body)
        attempt = uuid.uuid4()
        store = IdempotencyStore(
            scope["app"].state.backplane.db,
            lease_s=self.settings.idempotency_lease_s,
            ttl_s=self.settings.idempotency_ttl_s,
        )
        try:
            claim = await store.claim(user_id, key, fp, attempt, take_over=end_to_end)
        except Exception as exc:
            log.warning("idempotency.unavailable", error_type=type(exc).__name__)
            await send_problem(
                scope,
                receive,
                send,
                503,
                "idempotency_unavailable",
                "the Idempotency-Key cannot be honoured right now; try again shortly",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
            return
        if not claim.same_request:
            await send_problem(
                scope,
                receive,
                send,
                422,
                "idempotency_key_reused",
                "this Idempotency-Key was used for a different request",
            )
        elif claim.outcome == "in_progress":
            await send_problem(
                scope,
                receive,
                send,
                409,
                "idempotency_key_in_progress",
                "a request with this Idempotency-Key is still in progress",
                headers={"Retry-After": "1"},
            )
        elif claim.outcome == "done":
            assert claim.status is not None
            await send(
                {
                    "type": "http.response.start",
                    "status": claim.status,
                    "headers": [*claim.headers, REPLAYED],
                }
            )
            await send({"type": "http.response.body", "body": claim.body})
        else:
            if end_to_end:
                scope.setdefault("state", {})[STATE_KEY] = scoped_key(
                    user_id, scope["method"], scope["path"], key
                )
            await self._run(scope, receive, send, store, user_id, key, attempt, body)

    async def _run(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        store: IdempotencyStore,
        user_id: str,
        key: str,
        attempt: uuid.UUID,
        body: bytes,
    ) -> None:
        start: Message | None = None
        chunks: list[bytes] = []
        replayed_body = False

        async def receive_again() -> Message:
            nonlocal replayed_body
            if not replayed_body:
                replayed_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        async def hold(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        try:
            await self.app(scope, receive_again, hold)
        except BaseException:
            with contextlib.suppress(Exception):
                await store.release(user_id, key, attempt)
            raise
        if start is None:
            with contextlib.suppress(Exception):
                await store.release(user_id, key, attempt)
            return
        status: int = start["status"]
        response = b"".join(chunks)
        if is_transient(status):
            try:
                await store.release(user_id, key, attempt)
            except Exception as exc:
                # The key stays in progress until its lease lapses (on END_TO_END routes a
                # retry takes it over at once); then a retry runs.
                log.warning("idempotency.release_failed", error_type=type(exc).__name__)
        else:
            headers = [(n.lower(), v) for n, v in start.get("headers", [])]
            try:
                await store.finish(
                    user_id,
                    key,
                    attempt,
                    status,
                    [(n, v) for n, v in headers if n in STORED_HEADERS],
                    response,
                )
            except Exception as exc:
                # The client still gets its answer; a retry after the lease would run again
                # (on END_TO_END routes at once, answered the first result by the service).
                log.error("idempotency.store_failed", error_type=type(exc).__name__)
        await send(start)
        await send({"type": "http.response.body", "body": response})


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)
