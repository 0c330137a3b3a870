"""gRPC ↔ service: translation only."""

from __future__ import annotations

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from visiona.kit.grpcserver import current_user_id
from visiona.prompts.domain import Enhancement
from visiona.prompts.service import PromptsService
from visiona.prompts.v1 import prompts_pb2, prompts_pb2_grpc


def _enhancement(e: Enhancement) -> prompts_pb2.Enhancement:
    created = Timestamp()
    created.FromDatetime(e.created_at)
    return prompts_pb2.Enhancement(
        id=str(e.id),
        prompt=e.prompt,
        enhanced_prompt=e.enhanced_prompt,
        model=e.model,
        input_tokens=e.input_tokens,
        output_tokens=e.output_tokens,
        created_at=created,
    )


class PromptsServicer(prompts_pb2_grpc.PromptsServiceServicer):  # type: ignore[misc]
    def __init__(self, service: PromptsService) -> None:
        self.service = service

    async def EnhancePrompt(
        self, request: prompts_pb2.EnhancePromptRequest, context: grpc.aio.ServicerContext
    ) -> prompts_pb2.EnhancePromptResponse:
        enhancement = await self.service.enhance_prompt(current_user_id(), request.prompt)
        return prompts_pb2.EnhancePromptResponse(enhancement=_enhancement(enhancement))
