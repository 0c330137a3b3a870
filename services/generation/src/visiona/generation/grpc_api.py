"""gRPC ↔ service: translation only."""

from __future__ import annotations

import grpc

from visiona.generation.domain.generation import Generation
from visiona.generation.domain.request import check_request
from visiona.generation.service.generation import GenerationService
from visiona.generation.service.image import Gallery, ImageView
from visiona.generation.v1 import generation_pb2, generation_pb2_grpc
from visiona.kit import protoenum
from visiona.kit.grpcserver import current_user_id, timestamp
from visiona.kit.idempotency import mark_replayed, request_key
from visiona.kit.replicate import WebhookInbox, WebhookIngestRpc


def image_message(i: ImageView) -> generation_pb2.Image:
    return generation_pb2.Image(
        id=str(i.id),
        generation_id=str(i.generation_id),
        model_id=str(i.model_id),
        index=i.index,
        content_type=i.content_type,
        width=i.width,
        height=i.height,
        size_bytes=i.size_bytes,
        blurhash=i.blurhash,
        favourite=i.favourite,
        created_at=timestamp(i.created_at),
        url=i.url,
        thumbnail_url=i.thumbnail_url,
        download_url=i.download_url,
        urls_expire_at=timestamp(i.urls_expire_at),
        prompt=i.prompt,
    )


def generation_message(g: Generation, images: list[ImageView]) -> generation_pb2.Generation:
    message = generation_pb2.Generation(
        id=str(g.id),
        model_id=str(g.model_id),
        status=protoenum.to_proto(generation_pb2.GenerationStatus, g.status),
        prompt=g.prompt,
        final_prompt=g.final_prompt,
        enhanced=g.enhanced,
        degraded=g.degraded,
        enhancement_reason=g.enhancement_reason or "",
        style_pack=g.style_pack or "",
        num_outputs=g.num_outputs,
        delivered=g.delivered,
        aspect_ratio=g.aspect_ratio,
        output_format=g.output_format,
        failure_reason=g.failure_reason or "",
        failure_message=g.failure_message or "",
        created_at=timestamp(g.created_at),
        started_at=timestamp(g.started_at),
        finished_at=timestamp(g.finished_at),
        images=[image_message(i) for i in images],
    )
    if g.seed is not None:
        message.seed = g.seed
    return message


class GenerationServicer(WebhookIngestRpc, generation_pb2_grpc.GenerationServiceServicer):  # type: ignore[misc]
    webhook_response = generation_pb2.IngestReplicateWebhookResponse

    def __init__(
        self, generations: GenerationService, gallery: Gallery, webhooks: WebhookInbox
    ) -> None:
        self.generations = generations
        self.gallery = gallery
        self.webhooks = webhooks

    async def _message(self, user_id: str, g: Generation) -> generation_pb2.Generation:
        images = await self.gallery.of_generation(user_id, g.id) if g.delivered else []
        return generation_message(g, images)

    async def CreateGeneration(
        self, request: generation_pb2.CreateGenerationRequest, context: grpc.aio.ServicerContext
    ) -> generation_pb2.CreateGenerationResponse:
        user_id = current_user_id()
        checked = check_request(
            model_id=request.model_id,
            prompt=request.prompt,
            enhance=request.enhance,
            style_pack=request.style_pack or None,
            num_outputs=request.num_outputs or 1,
            aspect_ratio=request.aspect_ratio or None,
            seed=request.seed if request.HasField("seed") else None,
            lora_scale=request.lora_scale if request.HasField("lora_scale") else None,
            output_format=request.output_format or None,
        )
        g, replayed = await self.generations.create(
            user_id, checked, idempotency=request_key(context.invocation_metadata(), request)
        )
        if replayed:
            mark_replayed(context)
        return generation_pb2.CreateGenerationResponse(generation=await self._message(user_id, g))

    async def GetGeneration(
        self, request: generation_pb2.GetGenerationRequest, context: grpc.aio.ServicerContext
    ) -> generation_pb2.GetGenerationResponse:
        user_id = current_user_id()
        g = await self.generations.get(user_id, request.generation_id)
        return generation_pb2.GetGenerationResponse(generation=await self._message(user_id, g))

    async def ListGenerations(
        self, request: generation_pb2.ListGenerationsRequest, context: grpc.aio.ServicerContext
    ) -> generation_pb2.ListGenerationsResponse:
        user_id = current_user_id()
        gens, token = await self.generations.page(user_id, request.page_size, request.page_token)
        return generation_pb2.ListGenerationsResponse(
            generations=[generation_message(g, []) for g in gens], next_page_token=token
        )

    async def CancelGeneration(
        self, request: generation_pb2.CancelGenerationRequest, context: grpc.aio.ServicerContext
    ) -> generation_pb2.CancelGenerationResponse:
        user_id = current_user_id()
        g = await self.generations.cancel(user_id, request.generation_id)
        return generation_pb2.CancelGenerationResponse(generation=await self._message(user_id, g))

    async def ListImages(
        self, request: generation_pb2.ListImagesRequest, context: grpc.aio.ServicerContext
    ) -> generation_pb2.ListImagesResponse:
        images, token = await self.gallery.page(
            current_user_id(),
            request.page_size,
            request.page_token,
            model_id=request.model_id or None,
            favourites_only=request.favourites_only,
        )
        return generation_pb2.ListImagesResponse(
            images=[image_message(i) for i in images], next_page_token=token
        )

    async def GetImage(
        self, request: generation_pb2.GetImageRequest, context: grpc.aio.ServicerContext
    ) -> generation_pb2.GetImageResponse:
        image = await self.gallery.get(current_user_id(), request.image_id)
        return generation_pb2.GetImageResponse(image=image_message(image))

    async def UpdateImage(
        self, request: generation_pb2.UpdateImageRequest, context: grpc.aio.ServicerContext
    ) -> generation_pb2.UpdateImageResponse:
        image = await self.gallery.set_favourite(
            current_user_id(), request.image_id, request.favourite
        )
        return generation_pb2.UpdateImageResponse(image=image_message(image))

    async def DeleteImage(
        self, request: generation_pb2.DeleteImageRequest, context: grpc.aio.ServicerContext
    ) -> generation_pb2.DeleteImageResponse:
        await self.gallery.delete(current_user_id(), request.image_id)
        return generation_pb2.DeleteImageResponse()
