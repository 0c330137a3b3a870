"""Generations and the gallery: images of you from a prompt, kept in our storage."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from visiona.gateway.auth import CurrentUser
from visiona.gateway.clients import optional_time, user_call
from visiona.gateway.inputs import Cursor, RequestBody
from visiona.gateway.problems import Problem
from visiona.generation.v1 import generation_pb2

generations_router = APIRouter(prefix="/generations", tags=["generations"])
images_router = APIRouter(prefix="/images", tags=["gallery"])

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Missing or invalid session token"},
    503: {"model": Problem, "description": "The generation service is unavailable"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "No such resource of the caller"}
}
INVALID: dict[int | str, dict[str, Any]] = {
    422: {"model": Problem, "description": "Invalid request"}
}

AspectRatio = Literal[
    "1:1", "16:9", "21:9", "3:2", "2:3", "4:5", "5:4", "3:4", "4:3", "9:16", "9:21"
]
GenerationStatus = Literal[
    "awaiting_credits", "queued", "running", "succeeded", "failed", "canceled"
]


class CreateGenerationRequest(RequestBody):
    model_id: str = Field(min_length=1, max_length=64)
    prompt: str = Field(min_length=1, max_length=2000)
    enhance: bool = Field(default=False, description="Let the LLM enrich the prompt")
    pack: str | None = Field(default=None, max_length=64, description="A style pack id")
    num_outputs: int = Field(default=1, ge=1, le=4)
    aspect_ratio: AspectRatio = "1:1"
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)
    lora_scale: float | None = Field(default=None, ge=-1, le=2)
    output_format: Literal["webp", "jpg", "png"] = "webp"


class Image(BaseModel):
    id: str
    generation_id: str
    model_id: str
    index: int
    content_type: str
    width: int
    height: int
    size_bytes: int
    blurhash: str = Field(description="A BlurHash placeholder to show while loading")
    favourite: bool
    created_at: datetime
    url: str = Field(description="Short-lived URL of the full image")
    thumbnail_url: str = Field(description="Short-lived URL of a WebP thumbnail")
    download_url: str = Field(description="Short-lived URL that downloads the image as a file")
    urls_expire_at: datetime
    prompt: str


class Failure(BaseModel):
    reason: str
    message: str | None


class Generation(BaseModel):
    id: str
    model_id: str
    status: GenerationStatus
    prompt: str
    final_prompt: str = Field(description="What was sent to the image model")
    enhanced: bool
    degraded: bool = Field(
        description="True when the LLM was unreachable and your own prompt was used"
    )
    enhancement_reason: str | None
    pack: str | None
    num_outputs: int
    delivered: int = Field(description="Images stored in your gallery (and paid for)")
    aspect_ratio: str
    output_format: str
    seed: int | None
    failure: Failure | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    images: list[Image]


class GenerationPage(BaseModel):
    generations: list[Generation]
    next_cursor: str | None


class ImagePage(BaseModel):
    images: list[Image]
    next_cursor: str | None


class ImagePatch(RequestBody):
    favourite: bool


def _image(i: generation_pb2.Image) -> Image:
    return Image(
        id=i.id,
        generation_id=i.generation_id,
        model_id=i.model_id,
        index=i.index,
        content_type=i.content_type,
        width=i.width,
        height=i.height,
        size_bytes=i.size_bytes,
        blurhash=i.blurhash,
        favourite=i.favourite,
        created_at=i.created_at.ToDatetime(tzinfo=UTC),
        url=i.url,
        thumbnail_url=i.thumbnail_url,
        download_url=i.download_url,
        urls_expire_at=i.urls_expire_at.ToDatetime(tzinfo=UTC),
        prompt=i.prompt,
    )


def _generation(g: generation_pb2.Generation) -> Generation:
    return Generation(
        id=g.id,
        model_id=g.model_id,
        status=g.status,
        prompt=g.prompt,
        final_prompt=g.final_prompt,
        enhanced=g.enhanced,
        degraded=g.degraded,
        enhancement_reason=g.enhancement_reason or None,
        pack=g.style_pack or None,
        num_outputs=g.num_outputs,
        delivered=g.delivered,
        aspect_ratio=g.aspect_ratio,
        output_format=g.output_format,
        seed=g.seed if g.HasField("seed") else None,
        failure=Failure(reason=g.failure_reason, message=g.failure_message or None)
        if g.failure_reason
        else None,
        created_at=g.created_at.ToDatetime(tzinfo=UTC),
        started_at=optional_time(g, "started_at"),
        finished_at=optional_time(g, "finished_at"),
        images=[_image(i) for i in g.images],
    )


@generations_router.post(
    "",
    response_model=Generation,
    status_code=202,
    responses={
        **ERRORS,
        **INVALID,
        404: {"model": Problem, "description": "No such model (or style pack) of the caller"},
        409: {
            "model": Problem,
            "description": "The model is not ready (`model_not_ready`) or no longer available (`model_unavailable`), or a plan limit",
        },
    },
    summary="Generate 1-4 images with one of your models (credits held, then captured per image)",
    operation_id="createGeneration",
)
async def create_generation(
    body: CreateGenerationRequest, request: Request, user: CurrentUser
) -> Generation:
    backends, call = user_call(request, user.user_id, idempotent=True)
    # Enhancement and moderation wait on an LLM.
    call["timeout"] = backends.settings.llm_deadline_s
    message = generation_pb2.CreateGenerationRequest(
        model_id=body.model_id,
        prompt=body.prompt,
        enhance=body.enhance,
        style_pack=body.pack or "",
        num_outputs=body.num_outputs,
        aspect_ratio=body.aspect_ratio,
        output_format=body.output_format,
    )
    if body.seed is not None:
        message.seed = body.seed
    if body.lora_scale is not None:
        message.lora_scale = body.lora_scale
    r = await backends.generation.CreateGeneration(message, **call)
    return _generation(r.generation)


@generations_router.get(
    "",
    response_model=GenerationPage,
    responses={**ERRORS, **INVALID},
    summary="Your generations, newest first",
    operation_id="listGenerations",
)
async def list_generations(
    request: Request,
    user: CurrentUser,
    cursor: Cursor = None,
    limit: int = Query(default=50, ge=1, le=100),
) -> GenerationPage:
    backends, call = user_call(request, user.user_id)
    r = await backends.generation.ListGenerations(
        generation_pb2.ListGenerationsRequest(page_size=limit, page_token=cursor or ""), **call
    )
    return GenerationPage(
        generations=[_generation(g) for g in r.generations],
        next_cursor=r.next_page_token or None,
    )


@generations_router.get(
    "/{generation_id}",
    response_model=Generation,
    responses={**ERRORS, **NOT_FOUND},
    summary="One generation, with its images once stored",
    operation_id="getGeneration",
)
async def get_generation(generation_id: str, request: Request, user: CurrentUser) -> Generation:
    backends, call = user_call(request, user.user_id)
    r = await backends.generation.GetGeneration(
        generation_pb2.GetGenerationRequest(generation_id=generation_id), **call
    )
    return _generation(r.generation)


@generations_router.post(
    "/{generation_id}/cancel",
    response_model=Generation,
    responses={
        **ERRORS,
        **NOT_FOUND,
        409: {"model": Problem, "description": "The generation has already finished"},
    },
    summary="Cancel a generation (images not stored are not charged)",
    operation_id="cancelGeneration",
)
async def cancel_generation(generation_id: str, request: Request, user: CurrentUser) -> Generation:
    backends, call = user_call(request, user.user_id)
    r = await backends.generation.CancelGeneration(
        generation_pb2.CancelGenerationRequest(generation_id=generation_id), **call
    )
    return _generation(r.generation)


@images_router.get(
    "",
    response_model=ImagePage,
    responses={**ERRORS, **INVALID},
    summary="Your gallery, newest first",
    operation_id="listImages",
)
async def list_images(
    request: Request,
    user: CurrentUser,
    cursor: Cursor = None,
    limit: int = Query(default=50, ge=1, le=100),
    model_id: str | None = Query(default=None, max_length=64),
    favourites: bool = Query(default=False, description="Only favourites"),
) -> ImagePage:
    backends, call = user_call(request, user.user_id)
    r = await backends.generation.ListImages(
        generation_pb2.ListImagesRequest(
            page_size=limit,
            page_token=cursor or "",
            model_id=model_id or "",
            favourites_only=favourites,
        ),
        **call,
    )
    return ImagePage(images=[_image(i) for i in r.images], next_cursor=r.next_page_token or None)


@images_router.get(
    "/{image_id}",
    response_model=Image,
    responses={**ERRORS, **NOT_FOUND},
    summary="One image, with short-lived URLs (full size, thumbnail, download)",
    operation_id="getImage",
)
async def get_image(image_id: str, request: Request, user: CurrentUser) -> Image:
    backends, call = user_call(request, user.user_id)
    r = await backends.generation.GetImage(
        generation_pb2.GetImageRequest(image_id=image_id), **call
    )
    return _image(r.image)


@images_router.patch(
    "/{image_id}",
    response_model=Image,
    responses={**ERRORS, **NOT_FOUND, **INVALID},
    summary="Mark or unmark an image as a favourite",
    operation_id="updateImage",
)
async def update_image(
    image_id: str, body: ImagePatch, request: Request, user: CurrentUser
) -> Image:
    backends, call = user_call(request, user.user_id)
    r = await backends.generation.UpdateImage(
        generation_pb2.UpdateImageRequest(image_id=image_id, favourite=body.favourite), **call
    )
    return _image(r.image)


@images_router.delete(
    "/{image_id}",
    status_code=204,
    response_class=Response,
    responses={**ERRORS, **NOT_FOUND},
    summary="Delete an image and its stored files",
    operation_id="deleteImage",
)
async def delete_image(image_id: str, request: Request, user: CurrentUser) -> Response:
    backends, call = user_call(request, user.user_id)
    await backends.generation.DeleteImage(
        generation_pb2.DeleteImageRequest(image_id=image_id), **call
    )
    return Response(status_code=204)
