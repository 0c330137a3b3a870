"""Errors at the edge: every failure is ``application/problem+json`` with a stable ``code``.

gRPC statuses from the services map to HTTP statuses here, and only here; the service's own
stable code travels in the ``visiona-error-code`` trailing metadata.

A dependency that is unreachable or restarting is 503, never 500: a back service that cannot
reach its own database, broker or S3 answers UNAVAILABLE (``dependency_unavailable``), one
that cannot be reached at all is ``service_unavailable``, and the edge's own database, broker
or S3 failing a route is ``dependency_unavailable`` too (see
:func:`visiona.kit.faults.dependency_unavailable`). Every 503 says ``Retry-After:``
:data:`RETRY_AFTER_S`: one second, short enough that a client retrying as told sees a
restart end (PostgreSQL's takes seconds), long enough not to hammer one that is starting.
"""

from __future__ import annotations

from typing import Any

import grpc
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from visiona.kit.errors import DomainError, ErrorKind, size_text
from visiona.kit.faults import unavailable_dependency
from visiona.kit.grpcserver import (
    DEPENDENCY_UNAVAILABLE,
    ERROR_CODE_KEY,
    ERROR_MAX_BYTES_KEY,
    STATUS_BY_KIND,
)
from visiona.kit.logging import get_logger

log = get_logger(__name__)

PROBLEM_JSON = "application/problem+json"
# Seconds a 503 asks the client to wait before trying again (see the module docstring).
RETRY_AFTER_S = 1

HTTP_BY_GRPC: dict[grpc.StatusCode, tuple[int, str]] = {
    grpc.StatusCode.INVALID_ARGUMENT: (422, "invalid_argument"),
    grpc.StatusCode.OUT_OF_RANGE: (422, "out_of_range"),
    grpc.StatusCode.NOT_FOUND: (404, "not_found"),
    grpc.StatusCode.ALREADY_EXISTS: (409, "conflict"),
    grpc.StatusCode.FAILED_PRECONDITION: (409, "failed_precondition"),
    grpc.StatusCode.ABORTED: (409, "aborted"),
    grpc.StatusCode.PERMISSION_DENIED: (403, "permission_denied"),
    grpc.StatusCode.UNAUTHENTICATED: (401, "unauthenticated"),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (429, "resource_exhausted"),
    grpc.StatusCode.UNAVAILABLE: (503, "service_unavailable"),
    grpc.StatusCode.DEADLINE_EXCEEDED: (504, "deadline_exceeded"),
    grpc.StatusCode.UNIMPLEMENTED: (501, "not_implemented"),
}

# An error the gateway raises itself answers as the same error raised by a service would.
HTTP_BY_KIND: dict[ErrorKind, int] = {
    kind: HTTP_BY_GRPC.get(grpc_status, (500, ""))[0]
    for kind, grpc_status in STATUS_BY_KIND.items()
}

# Errors raised by the framework itself (routing, reading the body), not by a route.
HTTP_ERROR_CODES = {
    400: "malformed_body",
    404: "route_not_found",
    405: "method_not_allowed",
    413: "body_too_large",
}

TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
    501: "Not implemented",
    503: "Service unavailable",
    504: "Gateway timeout",
}


def _omitted_when_unset(schema: dict[str, Any]) -> None:
    # Unset optional members are left out of the body (never sent as null): no default to show.
    schema.pop("default", None)


class FieldError(BaseModel):
    """One invalid part of a request (``validation_error``)."""

    loc: list[str | int] = Field(
        description="Where: `body`, `query`, `path` or `header`, then names"
    )
    msg: str
    type: str = Field(description="The kind of error, e.g. `missing`, `string_too_long`")


class Problem(BaseModel):
    """RFC 9457 problem details, with Visiona's stable machine-readable ``code``."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(description="`urn:visiona:problem:<code>`")
    title: str
    status: int = Field(description="The HTTP status, repeated")
    code: str = Field(description="Stable and machine-readable: act on this")
    detail: str = Field(description="For humans; may change")
    request_id: str | SkipJsonSchema[None] = Field(
        default=None,
        description="The `X-Request-ID` of the failed request",
        json_schema_extra=_omitted_when_unset,
    )
    errors: list[FieldError] | SkipJsonSchema[None] = Field(
        default=None,
        description="Each invalid part (only with `validation_error`)",
        json_schema_extra=_omitted_when_unset,
    )
    max_bytes: int | SkipJsonSchema[None] = Field(
        default=None,
        description="The size limit that was passed, in bytes (with `photo_too_large`, "
        "`body_too_large`)",
        json_schema_extra=_omitted_when_unset,
    )
    max_size: str | SkipJsonSchema[None] = Field(
        default=None,
        description="The same limit for people, e.g. `20 MiB`",
        json_schema_extra=_omitted_when_unset,
    )


def problem(
    request: Request | None,
    status: int,
    code: str,
    detail: str,
    *,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
    max_bytes: int | None = None,
) -> JSONResponse:
    request_id = getattr(request.state, "request_id", None) if request is not None else None
    if status == 503 and not any(k.lower() == "retry-after" for k in headers or ()):
        headers = {**(headers or {}), "Retry-After": str(RETRY_AFTER_S)}
    body = Problem(
        type=f"urn:visiona:problem:{code}",
        title=TITLES.get(status, "Error"),
        status=status,
        code=code,
        detail=detail,
        request_id=request_id,
        errors=errors,
        max_bytes=max_bytes,
        max_size=None if max_bytes is None else size_text(max_bytes),
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


async def send_problem(
    scope: Scope,
    receive: Receive,
    send: Send,
    status: int,
    code: str,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    max_bytes: int | None = None,
) -> None:
    """Answer a request with a problem from an ASGI middleware, before any route sees it."""
    response = problem(Request(scope), status, code, detail, headers=headers, max_bytes=max_bytes)
    await response(scope, receive, send)


def from_rpc_error(request: Request, exc: grpc.aio.AioRpcError) -> JSONResponse:
    status, fallback = HTTP_BY_GRPC.get(exc.code(), (500, "internal_error"))
    code = fallback
    max_bytes = None
    for key, value in exc.trailing_metadata() or ():
        text = value.decode() if isinstance(value, bytes) else str(value)
        if key == ERROR_CODE_KEY:
            code = text
        elif key == ERROR_MAX_BYTES_KEY and text.isdigit():
            max_bytes = int(text)
    if status >= 500:
        log.warning("upstream.failed", grpc_status=exc.code().name, code=code)
    detail = exc.details() or TITLES.get(status, "error")
    if status == 503 and code == "service_unavailable":
        detail = "a backing service is unavailable; try again shortly"
    elif status == 500:
        detail = "internal error"
    return problem(request, status, code, detail, max_bytes=max_bytes)


async def rpc_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, grpc.aio.AioRpcError)
    return from_rpc_error(request, exc)


async def domain_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    status = HTTP_BY_KIND[exc.kind]
    headers = {"WWW-Authenticate": _bearer_challenge(exc.code)} if status == 401 else None
    return problem(request, status, exc.code, exc.message, headers=headers, max_bytes=exc.max_bytes)


def _bearer_challenge(code: str) -> str:
    """RFC 6750 § 3: a token that was sent and refused (expired, or invalid) is
    ``error="invalid_token"``, so that a client library knows to get a new one."""
    if code == "token_expired":
        return 'Bearer realm="visiona", error="invalid_token", error_description="the session token has expired"'
    if code == "invalid_token":
        return 'Bearer realm="visiona", error="invalid_token"'
    return 'Bearer realm="visiona"'


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        FieldError(loc=list(e.get("loc", ())), msg=e.get("msg", ""), type=e.get("type", ""))
        for e in exc.errors()
    ]
    return problem(request, 422, "validation_error", "the request is not valid", errors=errors)


async def http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = HTTP_ERROR_CODES.get(exc.status_code, "http_error")
    headers = dict(exc.headers) if exc.headers else None
    max_bytes = getattr(exc, "max_bytes", None)
    return problem(
        request, exc.status_code, code, str(exc.detail), headers=headers, max_bytes=max_bytes
    )


async def dependency_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """For the classes an unavailable dependency raises (registered for
    :data:`visiona.kit.faults.DEPENDENCY_ERROR_BASES`): 503 when it is one; anything else of
    those classes goes on to :func:`unhandled_error_handler`, as before."""
    if unavailable_dependency(exc) is None:
        raise exc
    return _dependency_unavailable(request, exc)


async def unhandled_error_handler(request: Request, exc: Exception) -> JSONResponse:
    if unavailable_dependency(exc) is not None:
        # Raised outside the middleware that adds the request id (this handler answers from
        # the outermost layer), so it is added here.
        request_id = getattr(request.state, "request_id", None)
        return _dependency_unavailable(
            request, exc, headers={"X-Request-ID": request_id} if request_id else None
        )
    log.exception("request.failed", error_type=type(exc).__name__)
    return problem(request, 500, "internal_error", "internal error")


def _dependency_unavailable(
    request: Request, exc: Exception, headers: dict[str, str] | None = None
) -> JSONResponse:
    log.warning(
        "request.dependency_unavailable",
        dependency=unavailable_dependency(exc),
        error_type=type(exc).__name__,
    )
    return problem(
        request,
        503,
        DEPENDENCY_UNAVAILABLE,
        "a service the API depends on is unavailable; try again shortly",
        headers=headers,
    )
