"""Edge hygiene that needs no database: security headers, the CORS allow-list, cross-site
request refusal, body limits.

All pure ASGI (no per-request objects unless a response must be made), so they cost next to
nothing on the hot path and never buffer a streamed response (``GET /v1/events``).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Collection, Iterable

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from visiona.gateway.edge.auth import authenticates_with_cookie
from visiona.gateway.edge.problems import problem, send_problem
from visiona.kit.errors import limit_text

# An API answer is data, never a document: nothing may load, run or frame it.
API_CSP = "default-src 'none'; frame-ancestors 'none'"
# FastAPI's /docs (Swagger UI) and /redoc load their code and styles from jsDelivr, fonts from
# Google (ReDoc), run one inline script (allowed by its hash, computed from the page itself,
# never 'unsafe-inline'), fetch /openapi.json and, for "Try it out", the API.
_DOCS_CSP = (
    "default-src 'none'; "
    "script-src https://cdn.jsdelivr.net{hashes}; "
    "style-src https://cdn.jsdelivr.net https://fonts.googleapis.com 'unsafe-inline'; "
    "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
    "font-src https://fonts.gstatic.com; "
    "connect-src 'self'; worker-src blob:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)

_ALWAYS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
)


def docs_csp(html: bytes) -> str:
    """The docs policy for this page: its inline scripts are allowed by their SHA-256."""
    hashes = "".join(
        f" 'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(html)
    )
    return _DOCS_CSP.format(hashes=hashes)


class SecurityHeadersMiddleware:
    """``nosniff``, no referrer, no framing, COOP, a CSP, ``Cache-Control: no-store`` on
    ``/v1`` unless the route chose, and HSTS when the gateway is served over HTTPS (never
    over plain http, where a browser would ignore it anyway and a developer's localhost
    would be pinned)."""

    def __init__(
        self, app: ASGIApp, *, docs_paths: Collection[str], hsts_max_age_s: int | None
    ) -> None:
        self.app = app
        self.docs_paths = frozenset(docs_paths)
        self.fixed = list(_ALWAYS)
        if hsts_max_age_s is not None:
            self.fixed.append((b"strict-transport-security", f"max-age={hsts_max_age_s}".encode()))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path in self.docs_paths:
            await self._docs(scope, receive, send)
            return
        api = path.startswith("/v1/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = self._headers(message.get("headers", []), API_CSP, api)
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _headers(
        self, given: Iterable[tuple[bytes, bytes]], csp: str, api: bool
    ) -> list[tuple[bytes, bytes]]:
        headers = list(given)
        present = {name.lower() for name, _ in headers}
        headers += [(name, value) for name, value in self.fixed if name not in present]
        if b"content-security-policy" not in present:
            headers.append((b"content-security-policy", csp.encode()))
        if api and b"cache-control" not in present:
            headers.append((b"cache-control", b"no-store"))
        return headers

    async def _docs(self, scope: Scope, receive: Receive, send: Send) -> None:
        # A few KB of HTML, rarely asked for: held until its inline scripts are hashed.
        messages: list[Message] = []

        async def hold(message: Message) -> None:
            messages.append(message)

        await self.app(scope, receive, hold)
        html = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
        for message in messages:
            if message["type"] == "http.response.start":
                message["headers"] = self._headers(
                    message.get("headers", []), docs_csp(html), api=False
                )
            await send(message)


class AllowListCORSMiddleware(CORSMiddleware):
    """Starlette's CORS for the origins in ``GATEWAY_CORS_ORIGINS``, except that a request from
    any other origin gets no CORS header at all (Starlette would still send its
    ``Access-Control-Allow-Credentials`` and expose list, and its preflight headers) and its
    preflight is refused with a problem."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = Headers(scope=scope)
            origin = headers.get("origin")
            if origin is not None and not self.is_allowed_origin(origin):
                if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
                    await send_problem(
                        scope,
                        receive,
                        send,
                        403,
                        "cors_origin_not_allowed",
                        "this origin may not call the API from a browser",
                    )
                    return
                await self.app(scope, receive, _vary_on_origin(send))
                return
        await super().__call__(scope, receive, send)


def _vary_on_origin(send: Send) -> Send:
    # The answer differs by Origin (an allowed one gets CORS headers): caches must know.
    async def sender(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", []), (b"vary", b"Origin")]
        await send(message)

    return sender


# Methods that change state: with the session cookie, only from the allowed web origins.
STATE_CHANGING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Fetch Metadata values a page on another origin cannot produce: a request the gateway's own
# pages made, or one the user made directly (typed URL, bookmark).
FIRST_PARTY_FETCH_SITES = frozenset({"same-origin", "none"})
API_PREFIX = "/v1/"
WEBHOOKS_PREFIX = "/webhooks/"


def is_json(content_type: str) -> bool:
    """``application/json`` or a ``+json`` type, parameters (``charset``) aside: what the API
    reads as JSON. None of them is a type a form or a preflight-free ``fetch`` can send."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    main, _, sub = media_type.partition("/")
    return main == "application" and (sub == "json" or sub.endswith("+json"))


def _has_body(headers: Headers) -> bool:
    if "transfer-encoding" in headers:
        return True
    try:
        return int(headers.get("content-length", "0")) > 0
    except ValueError:
        return True


class CrossSiteRequestGuard:
    """Makes the ``__session`` cookie safe to accept (pure ASGI, no database).

    A browser attaches the cookie to any request for the gateway's host, whichever page made
    it, so the cookie alone proves nothing about who asked. Two rules, checked before anything
    else is done with the request:

    - a state-changing request (POST, PUT, PATCH, DELETE) whose credentials are the cookie
      (no ``Authorization: Bearer``) must come from a page of ours: an ``Origin`` in
      ``GATEWAY_CORS_ORIGINS``, or ``Sec-Fetch-Site: same-origin`` or ``none`` (set by the
      browser; no page can forge either header). Otherwise 403 ``cross_site_request``, and
      nothing runs. A bearer token is never sent by a browser on its own: not affected;
    - under ``/v1`` a request with a body must declare it JSON, else 415
      ``unsupported_media_type``. The types a page can send to another origin without a CORS
      preflight (forms' ``application/x-www-form-urlencoded`` and ``multipart/form-data``,
      ``text/plain``) never reach a route, even from an origin the first rule lets through.

    Webhooks (``/webhooks/``) authenticate by their signatures and keep their own bodies.
    """

    def __init__(self, app: ASGIApp, *, allow_origins: Collection[str]) -> None:
        self.app = app
        self.allow_origins = frozenset(allow_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(WEBHOOKS_PREFIX):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        headers = request.headers
        refusal = None
        if (
            scope["method"] in STATE_CHANGING_METHODS
            and authenticates_with_cookie(request)
            and not self._first_party(headers)
        ):
            refusal = problem(
                request,
                403,
                "cross_site_request",
                "a request made with the session cookie must come from an allowed web origin "
                "(GATEWAY_CORS_ORIGINS); other clients send the token as Authorization: Bearer",
            )
        if (
            refusal is None
            and scope["path"].startswith(API_PREFIX)
            and _has_body(headers)
            and not is_json(headers.get("content-type", ""))
        ):
            refusal = problem(
                request,
                415,
                "unsupported_media_type",
                "the API reads JSON only: send the body with Content-Type: application/json",
            )
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _first_party(self, headers: Headers) -> bool:
        origin = headers.get("origin")
        if origin is not None and origin in self.allow_origins:
            return True
        return headers.get("sec-fetch-site") in FIRST_PARTY_FETCH_SITES


CORS_ALLOWED_HEADERS = (
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    "Last-Event-ID",
    "X-Request-Id",
)
CORS_EXPOSED_HEADERS = (
    "Retry-After",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "X-Request-Id",
    "Idempotent-Replayed",
)
CORS_METHODS = ("GET", "HEAD", "POST", "PATCH", "DELETE")


class BodyTooLarge(StarletteHTTPException):
    """A request body over the limit. Raised from ``receive``: a route reading its body turns
    it into the 413 problem through the app's handler; anything reading the body before the
    route (the idempotency middleware) lets it reach :class:`BodyLimitMiddleware`."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, body_too_large_detail(limit))
        self.max_bytes = limit


def body_too_large_detail(limit: int) -> str:
    return f"the request body is larger than the limit of {limit_text(limit)}"


class BodyLimitMiddleware:
    """413 ``body_too_large`` for a body over ``max_bytes``: at once when its Content-Length
    says so (nothing is read), and for a chunked body as soon as the bytes read pass it.
    Paths under ``exempt`` keep limits of their own (webhooks read their raw body with a
    limit per provider)."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, exempt: tuple[str, ...] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.exempt):
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await self._too_large(scope, receive, send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await self._too_large(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send_problem(
            scope,
            receive,
            send,
            413,
            "body_too_large",
            body_too_large_detail(self.max_bytes),
            # The rest of the body is not read: the connection cannot be reused.
            headers={"Connection": "close"},
            max_bytes=self.max_bytes,
        )


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
