import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FacePolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FACE_POLICY_UNSPECIFIED: _ClassVar[FacePolicy]
    FACE_POLICY_REQUIRE: _ClassVar[FacePolicy]
    FACE_POLICY_FLAG: _ClassVar[FacePolicy]

class PhotoStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PHOTO_STATUS_UNSPECIFIED: _ClassVar[PhotoStatus]
    PHOTO_STATUS_UPLOADING: _ClassVar[PhotoStatus]
    PHOTO_STATUS_ACCEPTED: _ClassVar[PhotoStatus]
    PHOTO_STATUS_ACCEPTED_WITH_WARNINGS: _ClassVar[PhotoStatus]
    PHOTO_STATUS_REJECTED: _ClassVar[PhotoStatus]

class ModelStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODEL_STATUS_UNSPECIFIED: _ClassVar[ModelStatus]
    MODEL_STATUS_AWAITING_CREDITS: _ClassVar[ModelStatus]
    MODEL_STATUS_PREPARING: _ClassVar[ModelStatus]
    MODEL_STATUS_QUEUED: _ClassVar[ModelStatus]
    MODEL_STATUS_TRAINING: _ClassVar[ModelStatus]
    MODEL_STATUS_SUCCEEDED: _ClassVar[ModelStatus]
    MODEL_STATUS_FAILED: _ClassVar[ModelStatus]
    MODEL_STATUS_CANCELED: _ClassVar[ModelStatus]
    MODEL_STATUS_UNAVAILABLE: _ClassVar[ModelStatus]
FACE_POLICY_UNSPECIFIED: FacePolicy
FACE_POLICY_REQUIRE: FacePolicy
FACE_POLICY_FLAG: FacePolicy
PHOTO_STATUS_UNSPECIFIED: PhotoStatus
PHOTO_STATUS_UPLOADING: PhotoStatus
PHOTO_STATUS_ACCEPTED: PhotoStatus
PHOTO_STATUS_ACCEPTED_WITH_WARNINGS: PhotoStatus
PHOTO_STATUS_REJECTED: PhotoStatus
MODEL_STATUS_UNSPECIFIED: ModelStatus
MODEL_STATUS_AWAITING_CREDITS: ModelStatus
MODEL_STATUS_PREPARING: ModelStatus
MODEL_STATUS_QUEUED: ModelStatus
MODEL_STATUS_TRAINING: ModelStatus
MODEL_STATUS_SUCCEEDED: ModelStatus
MODEL_STATUS_FAILED: ModelStatus
MODEL_STATUS_CANCELED: ModelStatus
MODEL_STATUS_UNAVAILABLE: ModelStatus

class PhotoUploadSpec(_message.Message):
    __slots__ = ("content_type",)
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    content_type: str
    def __init__(self, content_type: _Optional[str] = ...) -> None: ...

class CreatePhotoUploadsRequest(_message.Message):
    __slots__ = ("photos", "face_policy")
    PHOTOS_FIELD_NUMBER: _ClassVar[int]
    FACE_POLICY_FIELD_NUMBER: _ClassVar[int]
    photos: _containers.RepeatedCompositeFieldContainer[PhotoUploadSpec]
    face_policy: FacePolicy
    def __init__(self, photos: _Optional[_Iterable[_Union[PhotoUploadSpec, _Mapping]]] = ..., face_policy: _Optional[_Union[FacePolicy, str]] = ...) -> None: ...

class PhotoUpload(_message.Message):
    __slots__ = ("photo_id", "url", "fields", "expires_at", "max_bytes")
    class FieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PHOTO_ID_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    MAX_BYTES_FIELD_NUMBER: _ClassVar[int]
    photo_id: str
    url: str
    fields: _containers.ScalarMap[str, str]
    expires_at: _timestamp_pb2.Timestamp
    max_bytes: int
    def __init__(self, photo_id: _Optional[str] = ..., url: _Optional[str] = ..., fields: _Optional[_Mapping[str, str]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., max_bytes: _Optional[int] = ...) -> None: ...

class CreatePhotoUploadsResponse(_message.Message):
    __slots__ = ("uploads",)
    UPLOADS_FIELD_NUMBER: _ClassVar[int]
    uploads: _containers.RepeatedCompositeFieldContainer[PhotoUpload]
    def __init__(self, uploads: _Optional[_Iterable[_Union[PhotoUpload, _Mapping]]] = ...) -> None: ...

class CompletePhotoUploadRequest(_message.Message):
    __slots__ = ("photo_id",)
    PHOTO_ID_FIELD_NUMBER: _ClassVar[int]
    photo_id: str
    def __init__(self, photo_id: _Optional[str] = ...) -> None: ...

class Photo(_message.Message):
    __slots__ = ("id", "reasons", "content_type", "width", "height", "faces", "blur_score", "created_at", "validated_at", "preview_url", "require_one_face", "status")
    ID_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    FACES_FIELD_NUMBER: _ClassVar[int]
    BLUR_SCORE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    VALIDATED_AT_FIELD_NUMBER: _ClassVar[int]
    PREVIEW_URL_FIELD_NUMBER: _ClassVar[int]
    REQUIRE_ONE_FACE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    id: str
    reasons: _containers.RepeatedScalarFieldContainer[str]
    content_type: str
    width: int
    height: int
    faces: int
    blur_score: float
    created_at: _timestamp_pb2.Timestamp
    validated_at: _timestamp_pb2.Timestamp
    preview_url: str
    require_one_face: bool
    status: PhotoStatus
    def __init__(self, id: _Optional[str] = ..., reasons: _Optional[_Iterable[str]] = ..., content_type: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., faces: _Optional[int] = ..., blur_score: _Optional[float] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., validated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., preview_url: _Optional[str] = ..., require_one_face: _Optional[bool] = ..., status: _Optional[_Union[PhotoStatus, str]] = ...) -> None: ...

class ListPhotosRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListPhotosResponse(_message.Message):
    __slots__ = ("photos", "next_page_token")
    PHOTOS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    photos: _containers.RepeatedCompositeFieldContainer[Photo]
    next_page_token: str
    def __init__(self, photos: _Optional[_Iterable[_Union[Photo, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetPhotoRequest(_message.Message):
    __slots__ = ("photo_id",)
    PHOTO_ID_FIELD_NUMBER: _ClassVar[int]
    photo_id: str
    def __init__(self, photo_id: _Optional[str] = ...) -> None: ...

class DeletePhotoRequest(_message.Message):
    __slots__ = ("photo_id",)
    PHOTO_ID_FIELD_NUMBER: _ClassVar[int]
    photo_id: str
    def __init__(self, photo_id: _Optional[str] = ...) -> None: ...

class DeletePhotoResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CreateModelRequest(_message.Message):
    __slots__ = ("name", "photo_ids", "preset", "trigger_word")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PHOTO_IDS_FIELD_NUMBER: _ClassVar[int]
    PRESET_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_WORD_FIELD_NUMBER: _ClassVar[int]
    name: str
    photo_ids: _containers.RepeatedScalarFieldContainer[str]
    preset: str
    trigger_word: str
    def __init__(self, name: _Optional[str] = ..., photo_ids: _Optional[_Iterable[str]] = ..., preset: _Optional[str] = ..., trigger_word: _Optional[str] = ...) -> None: ...

class Model(_message.Message):
    __slots__ = ("id", "name", "preset", "trigger_word", "photo_count", "progress", "version", "failure_reason", "failure_message", "created_at", "queued_at", "started_at", "finished_at", "training_id", "sample_urls", "status")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PRESET_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_WORD_FIELD_NUMBER: _ClassVar[int]
    PHOTO_COUNT_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    FAILURE_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    QUEUED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    TRAINING_ID_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_URLS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    preset: str
    trigger_word: str
    photo_count: int
    progress: float
    version: str
    failure_reason: str
    failure_message: str
    created_at: _timestamp_pb2.Timestamp
    queued_at: _timestamp_pb2.Timestamp
    started_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    training_id: str
    sample_urls: _containers.RepeatedScalarFieldContainer[str]
    status: ModelStatus
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., preset: _Optional[str] = ..., trigger_word: _Optional[str] = ..., photo_count: _Optional[int] = ..., progress: _Optional[float] = ..., version: _Optional[str] = ..., failure_reason: _Optional[str] = ..., failure_message: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., queued_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., training_id: _Optional[str] = ..., sample_urls: _Optional[_Iterable[str]] = ..., status: _Optional[_Union[ModelStatus, str]] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models", "next_page_token")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[Model]
    next_page_token: str
    def __init__(self, models: _Optional[_Iterable[_Union[Model, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetModelRequest(_message.Message):
    __slots__ = ("model_id",)
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    def __init__(self, model_id: _Optional[str] = ...) -> None: ...

class RenameModelRequest(_message.Message):
    __slots__ = ("model_id", "name")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    name: str
    def __init__(self, model_id: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class CancelModelRequest(_message.Message):
    __slots__ = ("model_id",)
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    def __init__(self, model_id: _Optional[str] = ...) -> None: ...

class DeleteModelRequest(_message.Message):
    __slots__ = ("model_id",)
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    def __init__(self, model_id: _Optional[str] = ...) -> None: ...

class DeleteModelResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class IngestReplicateWebhookRequest(_message.Message):
    __slots__ = ("payload", "webhook_id", "webhook_timestamp", "webhook_signature")
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_ID_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    payload: bytes
    webhook_id: str
    webhook_timestamp: str
    webhook_signature: str
    def __init__(self, payload: _Optional[bytes] = ..., webhook_id: _Optional[str] = ..., webhook_timestamp: _Optional[str] = ..., webhook_signature: _Optional[str] = ...) -> None: ...

class IngestReplicateWebhookResponse(_message.Message):
    __slots__ = ("webhook_id", "duplicate")
    WEBHOOK_ID_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    webhook_id: str
    duplicate: bool
    def __init__(self, webhook_id: _Optional[str] = ..., duplicate: _Optional[bool] = ...) -> None: ...

class CompletePhotoUploadResponse(_message.Message):
    __slots__ = ("photo",)
    PHOTO_FIELD_NUMBER: _ClassVar[int]
    photo: Photo
    def __init__(self, photo: _Optional[_Union[Photo, _Mapping]] = ...) -> None: ...

class GetPhotoResponse(_message.Message):
    __slots__ = ("photo",)
    PHOTO_FIELD_NUMBER: _ClassVar[int]
    photo: Photo
    def __init__(self, photo: _Optional[_Union[Photo, _Mapping]] = ...) -> None: ...

class CreateModelResponse(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: Model
    def __init__(self, model: _Optional[_Union[Model, _Mapping]] = ...) -> None: ...

class GetModelResponse(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: Model
    def __init__(self, model: _Optional[_Union[Model, _Mapping]] = ...) -> None: ...

class RenameModelResponse(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: Model
    def __init__(self, model: _Optional[_Union[Model, _Mapping]] = ...) -> None: ...

class CancelModelResponse(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: Model
    def __init__(self, model: _Optional[_Union[Model, _Mapping]] = ...) -> None: ...
