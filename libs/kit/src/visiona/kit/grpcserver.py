"""grpc.aio server factory: health, reflection, and one interceptor for the cross-cutting work.

The interceptor, for every RPC but health and reflection: verifies the internal token the
caller must send (``x-visiona-internal-token``, see :mod:`visiona.kit.internal_token`) and
rejects the call as UNAUTHENTICATED (``invalid_internal_token``) without one; the principal
comes from that token alone. For unary RPCs it then binds the principal and the request id
to the logging context, continues the caller's trace, and maps a :class:`DomainError` to its
gRPC status with the stable code in trailing metadata (``visiona-error-code``). An error that
means a dependency is unreachable or restarting (:func:`visiona.kit.faults.dependency_unavailable`:
PostgreSQL, RabbitMQ, S3, another service) becomes UNAVAILABLE with the code
``dependency_unavailable``, logged as a warning: a retry can succeed and nothing is broken.
Anything else becomes INTERNAL without leaking its message. It also counts and times every
call (``grpc_server_handled_total``, ``grpc_server_handling_seconds`` with the trace as
exemplar; visiona.kit.metrics), a refused one too. These concerns share one wrapper so each
call pays for one extra frame, not five.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

import grpc
import structlog
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry import trace

from visiona.kit import metrics
from visiona.kit.errors import DomainError, ErrorKind, PermissionDenied, Unauthenticated
from visiona.kit.faults import unavailable_dependency
from visiona.kit.internal_token import InternalPrincipal, Verifier
from visiona.kit.logging import get_logger
from visiona.kit.telemetry import extract_context, metadata_to_dict, tracer

log = get_logger(__name__)
_tracer = tracer(__name__)

INTERNAL_TOKEN_KEY = "x-visiona-internal-token"  # noqa: S105 (a metadata key)
REQUEST_ID_KEY = "x-request-id"
ERROR_CODE_KEY = "visiona-error-code"
# The limit a size error is about (DomainError.max_bytes), in bytes.
ERROR_MAX_BYTES_KEY = "visiona-error-max-bytes"
DEPENDENCY_UNAVAILABLE = "dependency_unavailable"

STATUS_BY_KIND: dict[ErrorKind, grpc.StatusCode] = {
    ErrorKind.INVALID_ARGUMENT: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorKind.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    ErrorKind.PERMISSION_DENIED: grpc.StatusCode.PERMISSION_DENIED,
    ErrorKind.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ErrorKind.CONFLICT: grpc.StatusCode.ALREADY_EXISTS,
    ErrorKind.FAILED_PRECONDITION: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorKind.RESOURCE_EXHAUSTED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ErrorKind.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    ErrorKind.INTERNAL: grpc.StatusCode.INTERNAL,
}

# Reachable without a token: probes (kubelet, compose, the gateway's readiness) and tooling.
OPEN_SERVICES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)

_principal: contextvars.ContextVar[InternalPrincipal | None] = contextvars.ContextVar(
    "visiona_principal", default=None
)


def current_user_id() -> str:
    """The user the verified internal token names; raises when the call has none (the
    system principal, or outside an RPC)."""
    principal = _principal.get()
    if principal is None or principal.user_id is None:
        raise Unauthenticated("this call needs an authenticated user", code="unauthenticated")
    return principal.user_id


def require_system() -> InternalPrincipal:
    """The call's principal, which must be the system (an operator's tool, a webhook the
    gateway forwards): a call made for a user is refused."""
    principal = _principal.get()
    if principal is None or not principal.system:
        raise PermissionDenied("only the system principal may make this call", code="system_only")
    return principal


Handler = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]


@functools.cache
def rpc_labels(method: str) -> tuple[str, str]:
    """``("visiona.training.v1.TrainingService", "CreateModel")`` of a full method name
    (``/package.Service/Method``); only registered methods get here, so the set is bounded."""
    service, _, name = method.lstrip("/").rpartition("/")
    return service, name


@functools.cache
def _server_series(method: str) -> tuple[Any, Any]:
    """The method's histogram child and a per-code counter lookup, made once per method
    (label lookups take a lock; an RPC should not pay for them)."""
    service, name = rpc_labels(method)

    @functools.cache
    def handled(code: grpc.StatusCode) -> Any:
        return metrics.grpc_server_handled.labels(service, name, code.name)

    return metrics.grpc_server_seconds.labels(service, name), handled


def _observe_call(method: str, started: float, code: grpc.StatusCode) -> None:
    seconds, handled = _server_series(method)
    metrics.observe(seconds, time.perf_counter() - started)
    handled(code).inc()


class KitInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, verifier: Verifier) -> None:
        self.verifier = verifier

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or details.method.startswith(OPEN_SERVICES):
            return handler
        token = None
        for key, value in details.invocation_metadata or ():
            if key == INTERNAL_TOKEN_KEY:
                token = value.decode() if isinstance(value, bytes) else value
                break
        try:
            principal = self.verifier.verify(token)
        except Unauthenticated as exc:
            log.warning("rpc.rejected", rpc=details.method, reason=exc.message)
            return _rejecting(details.method, handler, exc)
        if handler.unary_unary is None:
            # No streaming RPC binds a principal yet; the token was still required above.
            return handler
        return grpc.unary_unary_rpc_method_handler(
            _wrap(details.method, principal, handler.unary_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def _rejecting(
    method: str, handler: grpc.RpcMethodHandler, exc: Unauthenticated
) -> grpc.RpcMethodHandler:
    """A handler of the same shape as ``handler`` that answers UNAUTHENTICATED at once."""

    async def reject(_request: Any, context: grpc.aio.ServicerContext) -> None:
        _observe_call(method, time.perf_counter(), grpc.StatusCode.UNAUTHENTICATED)
        context.set_trailing_metadata(((ERROR_CODE_KEY, exc.code),))
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, exc.message)

    serializers = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(reject, **serializers)
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(reject, **serializers)
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(reject, **serializers)
    return grpc.stream_stream_rpc_method_handler(reject, **serializers)


def _wrap(method: str, principal: InternalPrincipal, inner: Handler) -> Handler:
    async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
        started = time.perf_counter()
        metadata = metadata_to_dict(context.invocation_metadata())
        token = _principal.set(principal)
        code = grpc.StatusCode.OK
        try:
            with (
                _tracer.start_as_current_span(
                    method, context=extract_context(metadata), kind=trace.SpanKind.SERVER
                ) as span,
                structlog.contextvars.bound_contextvars(
                    rpc=method, request_id=metadata.get(REQUEST_ID_KEY), caller=principal.issuer
                ),
            ):
                try:
                    return await inner(request, context)
                except DomainError as exc:
                    code = STATUS_BY_KIND[exc.kind]
                    span.set_attribute("visiona.error_code", exc.code)
                    trailers = [(ERROR_CODE_KEY, exc.code)]
                    if exc.max_bytes is not None:
                        trailers.append((ERROR_MAX_BYTES_KEY, str(exc.max_bytes)))
                    context.set_trailing_metadata(tuple(trailers))
                    await context.abort(code, exc.message)
                except grpc.aio.AbortError:
                    code = context.code() or grpc.StatusCode.UNKNOWN
                    raise
                except asyncio.CancelledError:
                    code = grpc.StatusCode.CANCELLED
                    raise
                except Exception as exc:
                    dependency = unavailable_dependency(exc)
                    if dependency is not None:
                        code = grpc.StatusCode.UNAVAILABLE
                        # Expected while a dependency restarts: one line per call, no trace.
                        log.warning(
                            "rpc.dependency_unavailable",
                            dependency=dependency,
                            error_type=type(exc).__name__,
                        )
                        span.set_attribute("visiona.error_code", DEPENDENCY_UNAVAILABLE)
                        context.set_trailing_metadata(((ERROR_CODE_KEY, DEPENDENCY_UNAVAILABLE),))
                        await context.abort(
                            grpc.StatusCode.UNAVAILABLE,
                            "the service cannot reach what it depends on; try again shortly",
                        )
                    else:
                        code = grpc.StatusCode.INTERNAL
                        log.exception("rpc.failed")
                        span.record_exception(exc)
                        context.set_trailing_metadata(((ERROR_CODE_KEY, "internal_error"),))
                        await context.abort(grpc.StatusCode.INTERNAL, "internal error")
                finally:
                    # Inside the span: its trace is the exemplar.
                    _observe_call(method, started, code)
        finally:
            _principal.reset(token)

    return call


def create_server(
    *,
    verifier: Verifier,
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    max_connection_age_s: float = 300.0,
    max_connection_age_grace_s: float = 30.0,
) -> tuple[grpc.aio.Server, health.aio.HealthServicer]:
    """A server whose every RPC but health and reflection needs an internal token that
    ``verifier`` accepts.

    It closes each connection after ``max_connection_age_s`` (gRPC adds up to 10 % jitter)
    and lets its calls in flight finish within ``max_connection_age_grace_s``: a client
    holds one HTTP/2 connection per address it resolved, and only a new connection makes
    it resolve again, so without an age a pod the autoscaler adds would get no calls from
    the clients already running (visiona.kit.metrics.grpcclient)."""
    server = grpc.aio.server(
        interceptors=[KitInterceptor(verifier), *interceptors],
        options=[
            ("grpc.so_reuseport", 0),
            ("grpc.max_receive_message_length", 8 * 1024 * 1024),
            ("grpc.max_connection_age_ms", int(max_connection_age_s * 1000)),
            ("grpc.max_connection_age_grace_ms", int(max_connection_age_grace_s * 1000)),
        ],
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    return server, health_servicer


def enable_reflection(server: grpc.aio.Server, service_names: Sequence[str]) -> None:
    reflection.enable_server_reflection(
        [*service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], server
    )


SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def timestamp(value: datetime | None) -> Timestamp | None:
    """A protobuf Timestamp of ``value`` (``None`` stays unset in the message)."""
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts
