"""gRPC clients to other services: billing's GetEntitlements, the plan limits a new training
is checked against.

The call carries an internal token this service mints (iss ``training``) for the user whose
CreateModel it is serving; see visiona.kit.internal_token for who may mint what."""

from __future__ import annotations

import grpc

from visiona.billing.v1 import billing_pb2, billing_pb2_grpc
from visiona.kit.errors import Unavailable
from visiona.kit.grpcserver import INTERNAL_TOKEN_KEY
from visiona.kit.internal_token import Minter
from visiona.kit.metrics import grpcclient
from visiona.kit.telemetry import inject_headers
from visiona.training.service.model import Limits


class BillingEntitlements:
    def __init__(self, addr: str, deadline_s: float, minter: Minter) -> None:
        self.minter = minter
        self.channel = grpcclient.insecure_channel(addr)
        # The generated stub is untyped (the root mypy override still names the old module).
        stub = billing_pb2_grpc.BillingServiceStub
        self.stub = stub(self.channel)
        self.deadline_s = deadline_s

    async def limits(self, user_id: str) -> Limits:
        metadata = (*inject_headers().items(), (INTERNAL_TOKEN_KEY, self.minter.token(user_id)))
        try:
            r = await self.stub.GetEntitlements(
                billing_pb2.GetEntitlementsRequest(),
                timeout=self.deadline_s,
                metadata=metadata,
            )
        except grpc.aio.AioRpcError as exc:
            raise Unavailable(
                "plan limits are unavailable right now; try again shortly",
                code="billing_unavailable",
            ) from exc
        return Limits(
            max_concurrent_trainings=r.limits.max_concurrent_trainings,
            max_stored_models=r.limits.max_stored_models,
        )

    async def close(self) -> None:
        await self.channel.close()
