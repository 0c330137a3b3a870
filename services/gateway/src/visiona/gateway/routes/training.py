"""Photos and models: presigned uploads, validation verdicts, trainings and their models.

Photo files never pass through the gateway: the client POSTs each one straight to S3 with
the policy from ``POST /v1/photos/uploads``, then calls ``POST /v1/photos/{id}/complete``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from visiona.gateway.auth import CurrentUser
from visiona.gateway.clients import optional_time, user_call
from visiona.gateway.inputs import Cursor, RequestBody
from visiona.gateway.problems import Problem
from visiona.training.v1 import training_pb2

photos_router = APIRouter(prefix="/photos", tags=["photos"])
models_router = APIRouter(prefix="/models", tags=["models"])

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Missing or invalid session token"},
    503: {"model": Problem, "description": "The training service is unavailable"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "No such resource of the caller"}
}
INVALID: dict[int | str, dict[str, Any]] = {
    422: {"model": Problem, "description": "Invalid request"}
}

PhotoStatus = Literal["uploading", "accepted", "accepted_with_warnings", "rejected"]
ModelStatus = Literal[
    "awaiting_credits",
    "preparing",
    "queued",
    "training",
    "succeeded",
    "failed",
    "canceled",
    "unavailable",
]


class UploadSpec(RequestBody):
    content_type: Literal["image/jpeg", "image/png", "image/webp", "image/heic", "image/heif"]


class UploadsRequest(RequestBody):
    photos: list[UploadSpec] = Field(min_length=1, max_length=30)
    face_policy: Literal["require", "flag"] = Field(
        default="require",
        description="`require`: a photo without exactly one face is rejected; "
        "`flag`: accepted with a warning",
    )


class PhotoUpload(BaseModel):
    photo_id: str
    url: str = Field(description="POST a multipart form here: `fields`, then the file as `file`")
    fields: dict[str, str]
    expires_at: datetime
    max_bytes: int


class Uploads(BaseModel):
    uploads: list[PhotoUpload]


class Photo(BaseModel):
    id: str
    status: PhotoStatus
    reasons: list[str] = Field(
        description="Stable codes: not_an_image, unsupported_type, truncated, too_many_pixels, "
        "too_small, duplicate, no_face, several_faces (rejections); blurry, trailing_data "
        "(warnings; the face codes too under face_policy=flag)"
    )
    content_type: str | None
    width: int | None
    height: int | None
    faces: int | None
    blur_score: float | None
    require_one_face: bool
    created_at: datetime
    validated_at: datetime | None
    preview_url: str | None = Field(description="Short-lived URL of the stored, cleaned photo")


class PhotoPage(BaseModel):
    photos: list[Photo]
    next_cursor: str | None


class CreateModelRequest(RequestBody):
    name: str = Field(min_length=1, max_length=80)
    photo_ids: list[str] = Field(
        min_length=1, max_length=100, description="10-30 distinct accepted photos"
    )
    preset: Literal["fast", "balanced", "quality"] | None = None
    trigger_word: str | None = Field(
        default=None,
        min_length=3,
        max_length=32,
        pattern=r"^[A-Za-z][A-Za-z0-9_]{2,31}$",
        description="3-32 letters, digits or _, starting with a letter; a unique one is made "
        "when omitted",
    )


class RenameModelRequest(RequestBody):
    name: str = Field(min_length=1, max_length=80)


class Failure(BaseModel):
    reason: str
    message: str | None


class Model(BaseModel):
    id: str
    name: str
    status: ModelStatus
    preset: str
    trigger_word: str
    photo_count: int
    progress: float = Field(ge=0, le=1)
    version: str | None = Field(description="The trained version (owner/name:id) once ready")
    failure: Failure | None
    created_at: datetime
    queued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    training_id: str
    sample_urls: list[str]


class ModelPage(BaseModel):
    models: list[Model]
    next_cursor: str | None


def _photo(p: training_pb2.Photo) -> Photo:
    validated = p.HasField("validated_at")
    return Photo(
        id=p.id,
        status=p.status,
        reasons=list(p.reasons),
        content_type=p.content_type or None,
        width=p.width if validated and p.width else None,
        height=p.height if validated and p.height else None,
        faces=p.faces if validated and p.width else None,
        blur_score=p.blur_score if validated and p.width else None,
        require_one_face=p.require_one_face,
        created_at=p.created_at.ToDatetime(tzinfo=UTC),
        validated_at=optional_time(p, "validated_at"),
        preview_url=p.preview_url or None,
    )


def _model(m: training_pb2.Model) -> Model:
    return Model(
        id=m.id,
        name=m.name,
        status=m.status,
        preset=m.preset,
        trigger_word=m.trigger_word,
        photo_count=m.photo_count,
        progress=m.progress,
        version=m.version or None,
        failure=Failure(reason=m.failure_reason, message=m.failure_message or None)
        if m.failure_reason
        else None,
        created_at=m.created_at.ToDatetime(tzinfo=UTC),
        queued_at=optional_time(m, "queued_at"),
        started_at=optional_time(m, "started_at"),
        finished_at=optional_time(m, "finished_at"),
        training_id=m.training_id,
        sample_urls=list(m.sample_urls),
    )


# -- photos --------------------------------------------------------------------------------------


@photos_router.post(
    "/uploads",
    response_model=Uploads,
    status_code=201,
    responses={**ERRORS, **INVALID, 409: {"model": Problem, "description": "Photo limit"}},
    summary="Get presigned S3 POST policies, one per photo to upload",
    operation_id="createPhotoUploads",
)
async def create_uploads(body: UploadsRequest, request: Request, user: CurrentUser) -> Uploads:
    backends, call = user_call(request, user.user_id)
    r = await backends.training.CreatePhotoUploads(
        training_pb2.CreatePhotoUploadsRequest(
            photos=[training_pb2.PhotoUploadSpec(content_type=p.content_type) for p in body.photos],
            face_policy=training_pb2.FACE_POLICY_FLAG
            if body.face_policy == "flag"
            else training_pb2.FACE_POLICY_REQUIRE,
        ),
        **call,
    )
    return Uploads(
        uploads=[
            PhotoUpload(
                photo_id=u.photo_id,
                url=u.url,
                fields=dict(u.fields),
                expires_at=u.expires_at.ToDatetime(tzinfo=UTC),
                max_bytes=u.max_bytes,
            )
            for u in r.uploads
        ]
    )


@photos_router.post(
    "/{photo_id}/complete",
    response_model=Photo,
    responses={
        **ERRORS,
        **NOT_FOUND,
        409: {"model": Problem, "description": "Nothing uploaded for this photo yet"},
    },
    summary="Validate an uploaded photo; answers accepted, accepted_with_warnings or rejected",
    operation_id="completePhotoUpload",
)
async def complete_upload(photo_id: str, request: Request, user: CurrentUser) -> Photo:
    backends, call = user_call(request, user.user_id)
    call["timeout"] = backends.settings.upload_deadline_s
    r = await backends.training.CompletePhotoUpload(
        training_pb2.CompletePhotoUploadRequest(photo_id=photo_id), **call
    )
    return _photo(r.photo)


@photos_router.get(
    "",
    response_model=PhotoPage,
    responses={**ERRORS, **INVALID},
    summary="The caller's photos, newest first",
    operation_id="listPhotos",
)
async def list_photos(
    request: Request,
    user: CurrentUser,
    cursor: Cursor = None,
    limit: int = Query(default=50, ge=1, le=100),
) -> PhotoPage:
    backends, call = user_call(request, user.user_id)
    r = await backends.training.ListPhotos(
        training_pb2.ListPhotosRequest(page_size=limit, page_token=cursor or ""), **call
    )
    return PhotoPage(photos=[_photo(p) for p in r.photos], next_cursor=r.next_page_token or None)


@photos_router.get(
    "/{photo_id}",
    response_model=Photo,
    responses={**ERRORS, **NOT_FOUND},
    summary="One photo",
    operation_id="getPhoto",
)
async def get_photo(photo_id: str, request: Request, user: CurrentUser) -> Photo:
    backends, call = user_call(request, user.user_id)
    r = await backends.training.GetPhoto(training_pb2.GetPhotoRequest(photo_id=photo_id), **call)
    return _photo(r.photo)


@photos_router.delete(
    "/{photo_id}",
    status_code=204,
    response_class=Response,
    responses={
        **ERRORS,
        **NOT_FOUND,
        409: {"model": Problem, "description": "A model being prepared uses it"},
    },
    summary="Delete a photo and its stored file",
    operation_id="deletePhoto",
)
async def delete_photo(photo_id: str, request: Request, user: CurrentUser) -> Response:
    backends, call = user_call(request, user.user_id)
    await backends.training.DeletePhoto(training_pb2.DeletePhotoRequest(photo_id=photo_id), **call)
    return Response(status_code=204)


# -- models --------------------------------------------------------------------------------------


@models_router.post(
    "",
    response_model=Model,
    status_code=202,
    responses={
        **ERRORS,
        **INVALID,
        404: {"model": Problem, "description": "A photo is not the caller's"},
        409: {"model": Problem, "description": "A photo is not accepted, or a plan limit"},
    },
    summary="Train a new model on 10-30 accepted photos (credits are held, then captured)",
    operation_id="createModel",
)
async def create_model(body: CreateModelRequest, request: Request, user: CurrentUser) -> Model:
    backends, call = user_call(request, user.user_id, idempotent=True)
    r = await backends.training.CreateModel(
        training_pb2.CreateModelRequest(
            name=body.name,
            photo_ids=body.photo_ids,
            preset=body.preset or "",
            trigger_word=body.trigger_word or "",
        ),
        **call,
    )
    return _model(r.model)


@models_router.get(
    "",
    response_model=ModelPage,
    responses={**ERRORS, **INVALID},
    summary="The caller's models, newest first",
    operation_id="listModels",
)
async def list_models(
    request: Request,
    user: CurrentUser,
    cursor: Cursor = None,
    limit: int = Query(default=50, ge=1, le=100),
) -> ModelPage:
    backends, call = user_call(request, user.user_id)
    r = await backends.training.ListModels(
        training_pb2.ListModelsRequest(page_size=limit, page_token=cursor or ""), **call
    )
    return ModelPage(models=[_model(m) for m in r.models], next_cursor=r.next_page_token or None)


@models_router.get(
    "/{model_id}",
    response_model=Model,
    responses={**ERRORS, **NOT_FOUND},
    summary="One model: status, progress, timings",
    operation_id="getModel",
)
async def get_model(model_id: str, request: Request, user: CurrentUser) -> Model:
    backends, call = user_call(request, user.user_id)
    r = await backends.training.GetModel(training_pb2.GetModelRequest(model_id=model_id), **call)
    return _model(r.model)


@models_router.patch(
    "/{model_id}",
    response_model=Model,
    responses={**ERRORS, **NOT_FOUND, **INVALID},
    summary="Rename a model",
    operation_id="renameModel",
)
async def rename_model(
    model_id: str, body: RenameModelRequest, request: Request, user: CurrentUser
) -> Model:
    backends, call = user_call(request, user.user_id)
    r = await backends.training.RenameModel(
        training_pb2.RenameModelRequest(model_id=model_id, name=body.name), **call
    )
    return _model(r.model)


@models_router.post(
    "/{model_id}/cancel",
    response_model=Model,
    responses={
        **ERRORS,
        **NOT_FOUND,
        409: {"model": Problem, "description": "The training has already finished"},
    },
    summary="Cancel a training (its held credits are released)",
    operation_id="cancelModel",
)
async def cancel_model(model_id: str, request: Request, user: CurrentUser) -> Model:
    backends, call = user_call(request, user.user_id)
    r = await backends.training.CancelModel(
        training_pb2.CancelModelRequest(model_id=model_id), **call
    )
    return _model(r.model)


@models_router.delete(
    "/{model_id}",
    status_code=204,
    response_class=Response,
    responses={**ERRORS, **NOT_FOUND},
    summary="Delete a model: ours and the provider's copies (purged right after, with retries)",
    operation_id="deleteModel",
)
async def delete_model(model_id: str, request: Request, user: CurrentUser) -> Response:
    backends, call = user_call(request, user.user_id)
    await backends.training.DeleteModel(training_pb2.DeleteModelRequest(model_id=model_id), **call)
    return Response(status_code=204)
