"""gRPC ↔ service: translation only."""

from __future__ import annotations

import grpc

from visiona.billing.service import BillingService
from visiona.billing.v1 import billing_pb2, billing_pb2_grpc
from visiona.kit.grpcserver import current_user_id


class BillingServicer(billing_pb2_grpc.BillingServiceServicer):  # type: ignore[misc]
    def __init__(self, service: BillingService) -> None:
        self.service = service

    async def GetUsageSummary(
        self, request: billing_pb2.GetUsageSummaryRequest, context: grpc.aio.ServicerContext
    ) -> billing_pb2.GetUsageSummaryResponse:
        summary = await self.service.usage_summary(current_user_id())
        return billing_pb2.GetUsageSummaryResponse(
            enhancements=summary.enhancements, llm_tokens=summary.llm_tokens
        )
