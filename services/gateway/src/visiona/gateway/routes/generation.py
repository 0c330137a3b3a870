"""Generations and the gallery: images of you from a prompt, kept in our storage."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response

from visiona.gateway.clients import user_call
from visiona.gateway.edge.auth import CurrentUser
from visiona.gateway.edge.inputs import Cursor, Limit
from visiona.gateway.edge.openapi import INVALID, NOT_FOUND, problems, unavailable
from visiona.gateway.schemas.generation import (
    CreateGenerationRequest,
    Generation,
    GenerationPage,
    Image,
    ImagePage,
    ImagePatch,
)
from visiona.generation.v1 import generation_pb2

# The back service every route here waits on.
ERRORS = unavailable("The generation service is unavailable")
generations_router = APIRouter(prefix="/generations", tags=["generations"], responses=ERRORS)
images_router = APIRouter(prefix="/images", tags=["gallery"], responses=ERRORS)


@generations_router.post(
    "",
    response_model=Generation,
    status_code=202,
    responses=problems(
        {
            422: INVALID,
            404: "No such model (or style pack) of the caller",
            409: "The model is not ready (`model_not_ready`) or no longer available (`model_unavailable`), or a plan limit",
        }
    ),
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
    return Generation.from_proto(r.generation)


@generations_router.get(
    "",
    response_model=GenerationPage,
    responses=problems({422: INVALID}),
    summary="Your generations, newest first",
    operation_id="listGenerations",
)
async def list_generations(
    request: Request,
    user: CurrentUser,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> GenerationPage:
    backends, call = user_call(request, user.user_id)
    r = await backends.generation.ListGenerations(
        generation_pb2.ListGenerationsRequest(page_size=limit, page_token=cursor or ""), **call
    )
    return GenerationPage.from_proto(r)


@generations_router.get(
    "/{generation_id}",
    response_model=Generation,
    responses=problems({404: NOT_FOUND}),
    summary="One generation, with its images once stored",
    operation_id="getGeneration",
)
async def get_generation(generation_id: str, request: Request, user: CurrentUser) -> Generation:
    backends, call = user_call(request, user.user_id)
    r = await backends.generation.GetGeneration(
        generation_pb2.GetGenerationRequest(generation_id=generation_id), **call
    )
    return Generation.from_proto(r.generation)


@generations_router.post(
    "/{generation_id}/cancel",
    response_model=Generation,
    responses=problems({404: NOT_FOUND, 409: "The generation has already finished"}),
    summary="Cancel a generation (images not stored are not charged)",
    operation_id="cancelGeneration",
)
async def cancel_generation(generation_id: str, request: Request, user: CurrentUser) -> Generation:
    backends, call = user_call(request, user.user_id)
    r = await backends.generation.CancelGeneration(
        generation_pb2.CancelGenerationRequest(generation_id=generation_id), **call
    )
    return Generation.from_proto(r.generation)


@images_router.get(
    "",
    response_model=ImagePage,
    responses=problems({422: INVALID}),
    summary="Your gallery, newest first",
    operation_id="listImages",
)
async def list_images(
    request: Request,
    user: CurrentUser,
    cursor: Cursor = None,
    limit: Limit = 50,
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
    return ImagePage.from_proto(r)


@images_router.get(
    "/{image_id}",
    response_model=Image,
    responses=problems({404: NOT_FOUND}),
    summary="One image, with short-lived URLs (full size, thumbnail, download)",
    operation_id="getImage",
)
async def get_image(image_id: str, request: Request, user: CurrentUser) -> Image:
    backends, call = user_call(request, user.user_id)
    r = await backends.generation.GetImage(
        generation_pb2.GetImageRequest(image_id=image_id), **call
    )
    return Image.from_proto(r.image)


@images_router.patch(
    "/{image_id}",
    response_model=Image,
    responses=problems({404: NOT_FOUND, 422: INVALID}),
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
    return Image.from_proto(r.image)


@images_router.delete(
    "/{image_id}",
    status_code=204,
    response_class=Response,
    responses=problems({404: NOT_FOUND}),
    summary="Delete an image and its stored files",
    operation_id="deleteImage",
)
async def delete_image(image_id: str, request: Request, user: CurrentUser) -> Response:
    backends, call = user_call(request, user.user_id)
    await backends.generation.DeleteImage(
        generation_pb2.DeleteImageRequest(image_id=image_id), **call
    )
    return Response(status_code=204)
