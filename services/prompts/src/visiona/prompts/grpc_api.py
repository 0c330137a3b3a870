"""gRPC ↔ service: translation only."""

from __future__ import annotations

import grpc

from visiona.kit.errors import InvalidArgument, NotFound
from visiona.kit.grpcserver import current_user_id, timestamp
from visiona.prompts.domain.prompt import Enhancement, StylePack
from visiona.prompts.service import PromptsService
from visiona.prompts.v1 import prompts_pb2, prompts_pb2_grpc


# PostgreSQL text cannot hold NUL: storing such a prompt, or looking up such a pack, failed
# as an internal error (a 500, or a 503 from generation) instead of the caller's error.
def _prompt(prompt: str) -> str:
    if "\x00" in prompt:
        raise InvalidArgument("the prompt contains a NUL character", code="prompt_invalid")
    return prompt


def _pack_id(pack_id: str) -> str:
    if "\x00" in pack_id:
        raise NotFound(f"no style pack named {pack_id!r}", code="style_pack_not_found")
    return pack_id


def _enhancement(e: Enhancement) -> prompts_pb2.Enhancement:
    return prompts_pb2.Enhancement(
        id=str(e.id),
        prompt=e.prompt,
        enhanced_prompt=e.enhanced_prompt,
        model=e.model,
        input_tokens=e.input_tokens,
        output_tokens=e.output_tokens,
        created_at=timestamp(e.created_at),
    )


def _pack(p: StylePack) -> prompts_pb2.StylePack:
    return prompts_pb2.StylePack(
        id=p.id,
        name=p.name,
        description=p.description,
        templates=list(p.templates),
        negative_cues=list(p.negative_cues),
    )


class PromptsServicer(prompts_pb2_grpc.PromptsServiceServicer):  # type: ignore[misc]
    def __init__(self, service: PromptsService) -> None:
        self.service = service

    async def EnhancePrompt(
        self, request: prompts_pb2.EnhancePromptRequest, context: grpc.aio.ServicerContext
    ) -> prompts_pb2.EnhancePromptResponse:
        enhancement = await self.service.enhance_prompt(current_user_id(), _prompt(request.prompt))
        return prompts_pb2.EnhancePromptResponse(enhancement=_enhancement(enhancement))

    async def ListStylePacks(
        self, request: prompts_pb2.ListStylePacksRequest, context: grpc.aio.ServicerContext
    ) -> prompts_pb2.ListStylePacksResponse:
        packs = await self.service.list_style_packs()
        return prompts_pb2.ListStylePacksResponse(packs=[_pack(p) for p in packs])

    async def PreparePrompt(
        self, request: prompts_pb2.PreparePromptRequest, context: grpc.aio.ServicerContext
    ) -> prompts_pb2.PreparePromptResponse:
        prepared = await self.service.prepare_prompt(
            current_user_id(),
            _prompt(request.prompt),
            request.trigger_word,
            _pack_id(request.style_pack),
            request.enhance,
            time_left_s=context.time_remaining(),
        )
        return prompts_pb2.PreparePromptResponse(
            prompt=prepared.prompt,
            enhanced=prepared.enhanced,
            degraded=prepared.degraded,
            refused=prepared.refused,
            refusal_reason=prepared.refusal_reason,
            refusal_message=prepared.refusal_message,
            reason=prepared.reason,
            enhancement_id=str(prepared.enhancement_id) if prepared.enhancement_id else "",
        )
