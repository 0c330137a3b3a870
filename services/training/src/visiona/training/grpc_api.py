"""gRPC ↔ service: translation only."""

from __future__ import annotations

from datetime import timedelta

import grpc

from visiona.kit import protoenum
from visiona.kit.errors import InvalidArgument
from visiona.kit.grpcserver import current_user_id, timestamp
from visiona.kit.idempotency import mark_replayed, request_key
from visiona.kit.replicate import WebhookInbox, WebhookIngestRpc
from visiona.kit.storage import Storage
from visiona.training.domain.model import Model
from visiona.training.service.model import ModelService
from visiona.training.service.photo import PhotoService, PhotoView
from visiona.training.v1 import training_pb2, training_pb2_grpc

SAMPLE_TTL = timedelta(minutes=15)


def _name(name: str) -> str:
    # PostgreSQL text cannot hold NUL: storing it failed as an internal error (a 500).
    if "\x00" in name:
        raise InvalidArgument("name must not contain NUL characters", code="name_invalid")
    return name


def photo_message(p: PhotoView) -> training_pb2.Photo:
    return training_pb2.Photo(
        id=str(p.id),
        status=protoenum.to_proto(training_pb2.PhotoStatus, p.status),
        reasons=list(p.reasons),
        content_type=p.content_type or "",
        width=p.width or 0,
        height=p.height or 0,
        faces=p.faces or 0,
        blur_score=p.blur_score or 0.0,
        created_at=timestamp(p.created_at),
        validated_at=timestamp(p.validated_at),
        preview_url=p.preview_url or "",
        require_one_face=p.require_one_face,
    )


def model_message(m: Model) -> training_pb2.Model:
    return training_pb2.Model(
        id=str(m.id),
        name=m.name,
        status=protoenum.to_proto(training_pb2.ModelStatus, m.status),
        preset=m.preset,
        trigger_word=m.trigger_word,
        photo_count=len(m.photo_ids),
        progress=float(m.progress),
        version=m.version or "" if m.status == "succeeded" else "",
        failure_reason=m.failure_reason or "",
        failure_message=m.failure_message or "",
        created_at=timestamp(m.created_at),
        queued_at=timestamp(m.queued_at),
        started_at=timestamp(m.started_at),
        finished_at=timestamp(m.finished_at),
        training_id=str(m.training_id),
    )


class TrainingServicer(WebhookIngestRpc, training_pb2_grpc.TrainingServiceServicer):  # type: ignore[misc]
    webhook_response = training_pb2.IngestReplicateWebhookResponse

    def __init__(
        self,
        photos: PhotoService,
        models: ModelService,
        webhooks: WebhookInbox,
        storage: Storage,
    ) -> None:
        self.photos = photos
        self.models = models
        self.webhooks = webhooks
        self.storage = storage

    async def CreatePhotoUploads(
        self, request: training_pb2.CreatePhotoUploadsRequest, context: grpc.aio.ServicerContext
    ) -> training_pb2.CreatePhotoUploadsResponse:
        slots = await self.photos.create_uploads(
            current_user_id(),
            [p.content_type for p in request.photos],
            require_one_face=request.face_policy != training_pb2.FACE_POLICY_FLAG,
        )
        return training_pb2.CreatePhotoUploadsResponse(
            uploads=[
                training_pb2.PhotoUpload(
                    photo_id=str(s.photo_id),
                    url=s.post.url,
                    fields=s.post.fields,
                    expires_at=timestamp(s.post.expires_at),
                    max_bytes=s.max_bytes,
                )
                for s in slots
            ]
        )

    async def CompletePhotoUpload(
        self, request: training_pb2.CompletePhotoUploadRequest, context: grpc.aio.ServicerContext
    ) -> training_pb2.CompletePhotoUploadResponse:
        photo = await self.photos.complete(current_user_id(), request.photo_id)
        return training_pb2.CompletePhotoUploadResponse(photo=photo_message(photo))

    async def ListPhotos(
        self, request: training_pb2.ListPhotosRequest, context: grpc.aio.ServicerContext
    ) -> training_pb2.ListPhotosResponse:
        photos, token = await self.photos.page(
            current_user_id(), request.page_size, request.page_token
        )
        return training_pb2.ListPhotosResponse(
            photos=[photo_message(p) for p in photos], next_page_token=token
        )

    async def GetPhoto(
        self, request: training_pb2.GetPhotoRequest, context: grpc.aio.ServicerContext
    ) -> training_pb2.GetPhotoResponse:
        photo = await self.photos.get(current_user_id(), request.photo_id)
        return training_pb2.GetPhotoResponse(photo=photo_message(photo))

    async def DeletePhoto(
        self, request: training_pb2.DeletePhotoRequest, context: grpc.aio.ServicerContext
    ) -> training_pb2.DeletePhotoResponse:
        await self.photos.delete(current_user_id(), request.photo_id)
        return training_pb2.DeletePhotoResponse()

    async def CreateModel(
        self, request: training_pb2.CreateModelRequest, context: grpc.aio.ServicerContext
    ) -> training_pb2.CreateModelResponse:
        model, replayed = await self.models.create(
            current_user_id(),
            name=_name(request.name),
            photo_ids=list(request.photo_ids),
            preset=request.preset or None,
            trigger_word=request.trigger_word or None,
            idempotency=request_key(context.invocation_metadata(), request),
        )
        if replayed:
            mark_replayed(context)
        return training_pb2.CreateModelResponse(model=model_message(model))

    async def ListModels(
        self, request: training_pb2.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> training_pb2.ListModelsResponse:
        models, token = await self.models.page(
            current_user_id(), request.page_size, request.page_token
        )
        return training_pb2.ListModelsResponse(
            models=[model_message(m) for m in models], next_page_token=token
        )

    async def GetModel(
        self, request: training_pb2.GetModelRequest, context: grpc.aio.ServicerContext
    ) -> training_pb2.GetModelResponse:
        model = await self.models.get(current_user_id(), request.model_id)
        return training_pb2.GetModelResponse(model=model_message(model))

    async def RenameModel(
        self, request: training_pb2.RenameModelRequest, context: grpc.aio.ServicerContext
    ) -> training_pb2.RenameModelResponse:
        model = await self.models.rename(current_user_id(), request.model_id, _name(request.name))
        return training_pb2.RenameModelResponse(model=model_message(model))

    async def CancelModel(
        self, request: training_pb2.CancelModelRequest, context: grpc.aio.ServicerContext
    ) -> training_pb2.CancelModelResponse:
        model = await self.models.cancel(current_user_id(), request.model_id)
        return training_pb2.CancelModelResponse(model=model_message(model))

    async def DeleteModel(
        self, request: training_pb2.DeleteModelRequest, context: grpc.aio.ServicerContext
    ) -> training_pb2.DeleteModelResponse:
        await self.models.delete(current_user_id(), request.model_id)
        return training_pb2.DeleteModelResponse()
