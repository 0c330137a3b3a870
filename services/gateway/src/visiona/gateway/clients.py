"""gRPC channels to the back services, and the metadata every call carries.

One channel per service for the process; calls carry a deadline, an internal token naming the
caller's user (or the system principal, for webhooks; see visiona.kit.internal_token), the
request id and the trace context.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from visiona.admin.v1 import admin_pb2_grpc
from visiona.billing.v1 import billing_pb2_grpc
from visiona.gateway.config import GatewaySettings
from visiona.gateway.edge.idempotency import scoped_key_of
from visiona.generation.v1 import generation_pb2_grpc
from visiona.kit.grpcserver import INTERNAL_TOKEN_KEY, REQUEST_ID_KEY
from visiona.kit.idempotency import KEY_METADATA
from visiona.kit.internal_token import Minter
from visiona.kit.metrics import grpcclient
from visiona.kit.telemetry import inject_headers
from visiona.prompts.v1 import prompts_pb2_grpc
from visiona.training.v1 import training_pb2_grpc

_CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.enable_retries", 1),
]


# The process's minter, installed by Backends: call_metadata is called from every route and
# the token it mints is the same for any Backends of this process (one secret, one issuer).
_minter: Minter | None = None


def call_metadata(
    user_id: str | None, request_id: str | None, idempotency_key: str | None = None
) -> tuple[tuple[str, str], ...]:
    """Metadata of a call made for ``user_id`` (None: the system principal, e.g. a webhook),
    with the request's scoped idempotency key when the call creates or charges (ADR 0009)."""
    if _minter is None:
        raise RuntimeError("no internal token minter: the gateway's Backends are not set up")
    pairs = [(k, v) for k, v in inject_headers().items()]
    pairs.append((INTERNAL_TOKEN_KEY, _minter.token(user_id)))
    if request_id:
        pairs.append((REQUEST_ID_KEY, request_id))
    if idempotency_key:
        pairs.append((KEY_METADATA, idempotency_key))
    return tuple(pairs)


@dataclass
class Backend:
    name: str
    channel: grpc.aio.Channel

    async def health(self, timeout: float) -> str:
        stub = health_pb2_grpc.HealthStub(self.channel)
        response = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout)
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))


class Backends:
    def __init__(self, settings: GatewaySettings) -> None:
        global _minter
        self.settings = settings
        # Raises (the gateway does not start) without a usable GATEWAY_INTERNAL_TOKEN_SECRET.
        self.minter = Minter.from_settings(settings)
        _minter = self.minter
        self.all = {
            name: Backend(name, grpcclient.insecure_channel(addr, options=_CHANNEL_OPTIONS))
            for name, addr in (
                ("prompts", settings.prompts_addr),
                ("training", settings.training_addr),
                ("generation", settings.generation_addr),
                ("billing", settings.billing_addr),
            )
        }
        self.prompts = prompts_pb2_grpc.PromptsServiceStub(self.all["prompts"].channel)
        self.billing = billing_pb2_grpc.BillingServiceStub(self.all["billing"].channel)
        self.training = training_pb2_grpc.TrainingServiceStub(self.all["training"].channel)
        self.generation = generation_pb2_grpc.GenerationServiceStub(self.all["generation"].channel)
        # Operators' tools over each service's paid jobs (routes/admin.py).
        self.jobs = {
            name: admin_pb2_grpc.JobAdminServiceStub(self.all[name].channel)
            for name in ("training", "generation")
        }
        # Each back service's dead letters and outbox (visiona.kit.runtime.ops).
        self.ops = {name: admin_pb2_grpc.OpsServiceStub(b.channel) for name, b in self.all.items()}

    async def close(self) -> None:
        for backend in self.all.values():
            await backend.channel.close()


def user_call(
    request: Any, user_id: str | None, *, idempotent: bool = False
) -> tuple[Backends, dict[str, Any]]:
    """The backends and the keyword arguments of a call made for ``user_id`` (None: the
    system principal, e.g. a webhook): the default deadline and the metadata (internal
    token, request id, trace context). ``idempotent``:
    the call is the route's create, which the service deduplicates on the request's scoped
    Idempotency-Key (when the client sent one)."""
    backends: Backends = request.app.state.backends
    key = scoped_key_of(request) if idempotent else None
    return backends, {
        "timeout": backends.settings.grpc_deadline_s,
        "metadata": call_metadata(user_id, request.state.request_id, key),
    }
