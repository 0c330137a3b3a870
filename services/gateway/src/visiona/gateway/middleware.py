"""Per-request context: request id, trace span and logging context (pure ASGI, cheap)."""

from __future__ import annotations

import re
import uuid

import structlog
from opentelemetry import context as otel_context
from opentelemetry import trace
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from visiona.kit.telemetry import extract_context, tracer

_tracer = tracer(__name__)
_FORM = "application/x-www-form-urlencoded"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,128}$")


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        if headers.get("content-type", "").startswith(_FORM) and scope["path"].startswith("/v1/"):
            # The API speaks only JSON. `curl -d` labels its body as a form by default; read it
            # as the JSON it is rather than answering 422 to the most common first request.
            scope["headers"] = [
                (k, b"application/json" if k == b"content-type" else v) for k, v in scope["headers"]
            ]
        given = headers.get("x-request-id", "")
        request_id = given if _VALID_REQUEST_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        raw_id = request_id.encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", raw_id)]
            await send(message)

        token = otel_context.attach(extract_context(headers))
        try:
            with (
                _tracer.start_as_current_span(
                    f"{scope['method']} {scope['path']}", kind=trace.SpanKind.SERVER
                ),
                structlog.contextvars.bound_contextvars(
                    request_id=request_id, method=scope["method"], path=scope["path"]
                ),
            ):
                await self.app(scope, receive, send_with_id)
        finally:
            otel_context.detach(token)
