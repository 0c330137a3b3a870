"""The client side of the gRPC metrics: every channel a process opens to another service
counts and times its calls (``grpc_client_handled_total``, ``grpc_client_handling_seconds``).

Health checks (the gateway's readiness) are not counted, as on the server.

The channels also spread their calls over every instance of the service: a target may name
several addresses (``ipv4:127.0.0.1:5001,127.0.0.1:5002``, what ``LocalStack`` gives a stack
with two instances of each service) or a DNS name that resolves to several (``dns:///training:50051``
over a headless Kubernetes Service), and the ``round_robin`` policy keeps a connection to each
and takes them in turn. gRPC's default, ``pick_first``, would send every call down the first
connection: one long-lived HTTP/2 connection per client pins all its calls to one pod, and a
pod the autoscaler adds gets none. The servers close connections after a while
(``grpc_max_connection_age_s``, visiona.kit.grpcserver) so that clients resolve the name again
and find the new pods.
"""

from __future__ import annotations

import functools
import json
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


SERVICE_CONFIG_OPTION = "grpc.service_config"
# Round robin over every address the target resolves to (see the module's docstring).
ROUND_ROBIN = json.dumps({"loadBalancingConfig": [{"round_robin": {}}]})


def channel_options(options: Sequence[tuple[str, Any]] | None = None) -> list[tuple[str, Any]]:
    """``options`` with the round-robin service config, unless they bring one of their own."""
    merged = list(options or ())
    if not any(name == SERVICE_CONFIG_OPTION for name, _ in merged):
        merged.append((SERVICE_CONFIG_OPTION, ROUND_ROBIN))
    return merged


def insecure_channel(
    target: str, options: Sequence[tuple[str, Any]] | None = None
) -> grpc.aio.Channel:
    """A channel to another service (every instance the target names, in turn) whose calls
    are counted and timed."""
    return grpc.aio.insecure_channel(
        target, options=channel_options(options), interceptors=[ClientMetricsInterceptor()]
    )
