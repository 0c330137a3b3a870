"""Request and response bodies of photos and models (routes/training.py), and how a
training message becomes one."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from visiona.gateway.edge.inputs import RequestBody
from visiona.gateway.schemas import EnumStrings, Failure, FromMessage, Page, from_message
from visiona.training.v1 import training_pb2

PhotoStatus = Annotated[str, EnumStrings(training_pb2.PhotoStatus)]
ModelStatus = Annotated[str, EnumStrings(training_pb2.ModelStatus)]


class UploadSpec(RequestBody):
    content_type: Literal["image/jpeg", "image/png", "image/webp", "image/heic", "image/heif"]


class UploadsRequest(RequestBody):
    photos: list[UploadSpec] = Field(min_length=1, max_length=30)
    face_policy: Annotated[str, EnumStrings(training_pb2.FacePolicy)] = Field(
        default="require",
        description="`require`: a photo without exactly one face is rejected; "
        "`flag`: accepted with a warning",
    )


class PhotoUpload(FromMessage):
    photo_id: str
    url: str = Field(description="POST a multipart form here: `fields`, then the file as `file`")
    fields: dict[str, str]
    expires_at: datetime
    max_bytes: int


class Uploads(FromMessage):
    uploads: list[PhotoUpload]


class Photo(FromMessage):
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

    @classmethod
    def from_proto(cls, p: training_pb2.Photo) -> Photo:
        validated = p.HasField("validated_at")
        return from_message(
            cls,
            p,
            width=p.width if validated and p.width else None,
            height=p.height if validated and p.height else None,
            faces=p.faces if validated and p.width else None,
            blur_score=p.blur_score if validated and p.width else None,
        )


class PhotoPage(Page):
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


class Model(FromMessage):
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

    @classmethod
    def from_proto(cls, m: training_pb2.Model) -> Model:
        return from_message(cls, m, failure=Failure.of(m))


class ModelPage(Page):
    models: list[Model]
    next_cursor: str | None
