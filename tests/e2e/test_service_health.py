"""Back services report grpc.health.v1: readiness follows the dependencies, liveness the process."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.stack import RunningStack

SERVING = health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize("service", ["prompts", "training", "generation", "billing"])
def test_readiness_liveness_and_the_named_service_are_serving(
    stack: RunningStack, service: str
) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{stack.cfg.ports[service]}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        full_name = f"visiona.{service}.v1.{service.capitalize()}Service"
        for name in ("", "liveness", full_name):
            reply = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=2)
            assert reply.status == SERVING, name
        with pytest.raises(grpc.RpcError) as info:
            health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=2)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_reflection_lists_the_service(stack: RunningStack) -> None:
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{stack.cfg.ports['prompts']}") as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        replies = stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=2
        )
        names = {s.name for reply in replies for s in reply.list_services_response.service}
    assert {"visiona.prompts.v1.PromptsService", "grpc.health.v1.Health"} <= names
