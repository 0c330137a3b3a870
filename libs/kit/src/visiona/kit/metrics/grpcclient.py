"""The client side of the gRPC metrics: every channel a process opens to another service
counts and times its calls (``grpc_client_handled_total``, ``grpc_client_handling_seconds``).

Health checks (the gateway's readiness) are not counted, as on the server.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from typing import Any

import grpc

from visiona.kit import metrics

_UNCOUNTED = ("/grpc.health.v1.Health/", "/grpc.reflection.")


@functools.cache
def _series(method: str) -> tuple[Any, Callable[[grpc.StatusCode], Any]]:
    """The method's histogram child and its per-code counters, made once per method."""
    service, _, name = method.lstrip("/").rpartition("/")

    @functools.cache
    def handled(code: grpc.StatusCode) -> Any:
        return metrics.grpc_client_handled.labels(service, name, code.name)

    return metrics.grpc_client_seconds.labels(service, name), handled


class ClientMetricsInterceptor(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Any],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        method = client_call_details.method
        if isinstance(method, bytes):
            method = method.decode()
        if method.startswith(_UNCOUNTED):
            return await continuation(client_call_details, request)
        started = time.perf_counter()
        call = await continuation(client_call_details, request)
        code = await call.code()  # waits for the status; the caller still gets the call
        seconds, handled = _series(method)
        metrics.observe(seconds, time.perf_counter() - started)
        handled(code).inc()
        return call


def insecure_channel(
    target: str, options: Sequence[tuple[str, Any]] | None = None
) -> grpc.aio.Channel:
    """A channel to another service whose calls are counted and timed."""
    return grpc.aio.insecure_channel(
        target, options=options, interceptors=[ClientMetricsInterceptor()]
    )
