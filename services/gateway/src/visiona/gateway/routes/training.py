"""Photos and models: presigned uploads, validation verdicts, trainings and their models.

Photo files never pass through the gateway: the client POSTs each one straight to S3 with
the policy from ``POST /v1/photos/uploads``, then calls ``POST /v1/photos/{id}/complete``.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from visiona.gateway.clients import user_call
from visiona.gateway.edge.auth import CurrentUser
from visiona.gateway.edge.inputs import Cursor, Limit
from visiona.gateway.edge.openapi import INVALID, NOT_FOUND, problems, unavailable
from visiona.gateway.schemas.training import (
    CreateModelRequest,
    Model,
    ModelPage,
    Photo,
    PhotoPage,
    RenameModelRequest,
    Uploads,
    UploadsRequest,
)
from visiona.kit import protoenum
from visiona.training.v1 import training_pb2

# The back service every route here waits on.
ERRORS = unavailable("The training service is unavailable")
photos_router = APIRouter(prefix="/photos", tags=["photos"], responses=ERRORS)
models_router = APIRouter(prefix="/models", tags=["models"], responses=ERRORS)


# -- photos --------------------------------------------------------------------------------------


@photos_router.post(
    "/uploads",
    response_model=Uploads,
    status_code=201,
    responses=problems({422: INVALID, 409: "Photo limit"}),
    summary="Get presigned S3 POST policies, one per photo to upload",
    operation_id="createPhotoUploads",
)
async def create_uploads(body: UploadsRequest, request: Request, user: CurrentUser) -> Uploads:
    backends, call = user_call(request, user.user_id)
    r = await backends.training.CreatePhotoUploads(
        training_pb2.CreatePhotoUploadsRequest(
            photos=[training_pb2.PhotoUploadSpec(content_type=p.content_type) for p in body.photos],
            face_policy=protoenum.to_proto(training_pb2.FacePolicy, body.face_policy),
        ),
        **call,
    )
    return Uploads.from_proto(r)


@photos_router.post(
    "/{photo_id}/complete",
    response_model=Photo,
    responses=problems({404: NOT_FOUND, 409: "Nothing uploaded for this photo yet"}),
    summary="Validate an uploaded photo; answers accepted, accepted_with_warnings or rejected",
    operation_id="completePhotoUpload",
)
async def complete_upload(photo_id: str, request: Request, user: CurrentUser) -> Photo:
    backends, call = user_call(request, user.user_id)
    call["timeout"] = backends.settings.upload_deadline_s
    r = await backends.training.CompletePhotoUpload(
        training_pb2.CompletePhotoUploadRequest(photo_id=photo_id), **call
    )
    return Photo.from_proto(r.photo)


@photos_router.get(
    "",
    response_model=PhotoPage,
    responses=problems({422: INVALID}),
    summary="The caller's photos, newest first",
    operation_id="listPhotos",
)
async def list_photos(
    request: Request,
    user: CurrentUser,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> PhotoPage:
    backends, call = user_call(request, user.user_id)
    r = await backends.training.ListPhotos(
        training_pb2.ListPhotosRequest(page_size=limit, page_token=cursor or ""), **call
    )
    return PhotoPage.from_proto(r)


@photos_router.get(
    "/{photo_id}",
    response_model=Photo,
    responses=problems({404: NOT_FOUND}),
    summary="One photo",
    operation_id="getPhoto",
)
async def get_photo(photo_id: str, request: Request, user: CurrentUser) -> Photo:
    backends, call = user_call(request, user.user_id)
    r = await backends.training.GetPhoto(training_pb2.GetPhotoRequest(photo_id=photo_id), **call)
    return Photo.from_proto(r.photo)


@photos_router.delete(
    "/{photo_id}",
    status_code=204,
    response_class=Response,
    responses=problems({404: NOT_FOUND, 409: "A model being prepared uses it"}),
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
    responses=problems(
        {
            422: INVALID,
            404: "A photo is not the caller's",
            409: "A photo is not accepted, or a plan limit",
        }
    ),
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
    return Model.from_proto(r.model)


@models_router.get(
    "",
    response_model=ModelPage,
    responses=problems({422: INVALID}),
    summary="The caller's models, newest first",
    operation_id="listModels",
)
async def list_models(
    request: Request,
    user: CurrentUser,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> ModelPage:
    backends, call = user_call(request, user.user_id)
    r = await backends.training.ListModels(
        training_pb2.ListModelsRequest(page_size=limit, page_token=cursor or ""), **call
    )
    return ModelPage.from_proto(r)


@models_router.get(
    "/{model_id}",
    response_model=Model,
    responses=problems({404: NOT_FOUND}),
    summary="One model: status, progress, timings",
    operation_id="getModel",
)
async def get_model(model_id: str, request: Request, user: CurrentUser) -> Model:
    backends, call = user_call(request, user.user_id)
    r = await backends.training.GetModel(training_pb2.GetModelRequest(model_id=model_id), **call)
    return Model.from_proto(r.model)


@models_router.patch(
    "/{model_id}",
    response_model=Model,
    responses=problems({404: NOT_FOUND, 422: INVALID}),
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
    return Model.from_proto(r.model)


@models_router.post(
    "/{model_id}/cancel",
    response_model=Model,
    responses=problems({404: NOT_FOUND, 409: "The training has already finished"}),
    summary="Cancel a training (its held credits are released)",
    operation_id="cancelModel",
)
async def cancel_model(model_id: str, request: Request, user: CurrentUser) -> Model:
    backends, call = user_call(request, user.user_id)
    r = await backends.training.CancelModel(
        training_pb2.CancelModelRequest(model_id=model_id), **call
    )
    return Model.from_proto(r.model)


@models_router.delete(
    "/{model_id}",
    status_code=204,
    response_class=Response,
    responses=problems({404: NOT_FOUND}),
    summary="Delete a model: ours and the provider's copies (purged right after, with retries)",
    operation_id="deleteModel",
)
async def delete_model(model_id: str, request: Request, user: CurrentUser) -> Response:
    backends, call = user_call(request, user.user_id)
    await backends.training.DeleteModel(training_pb2.DeleteModelRequest(model_id=model_id), **call)
    return Response(status_code=204)
