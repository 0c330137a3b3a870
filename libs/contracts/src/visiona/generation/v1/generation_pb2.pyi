import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GenerationStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    GENERATION_STATUS_UNSPECIFIED: _ClassVar[GenerationStatus]
    GENERATION_STATUS_AWAITING_CREDITS: _ClassVar[GenerationStatus]
    GENERATION_STATUS_QUEUED: _ClassVar[GenerationStatus]
    GENERATION_STATUS_RUNNING: _ClassVar[GenerationStatus]
    GENERATION_STATUS_SUCCEEDED: _ClassVar[GenerationStatus]
    GENERATION_STATUS_FAILED: _ClassVar[GenerationStatus]
    GENERATION_STATUS_CANCELED: _ClassVar[GenerationStatus]
GENERATION_STATUS_UNSPECIFIED: GenerationStatus
GENERATION_STATUS_AWAITING_CREDITS: GenerationStatus
GENERATION_STATUS_QUEUED: GenerationStatus
GENERATION_STATUS_RUNNING: GenerationStatus
GENERATION_STATUS_SUCCEEDED: GenerationStatus
GENERATION_STATUS_FAILED: GenerationStatus
GENERATION_STATUS_CANCELED: GenerationStatus

class CreateGenerationRequest(_message.Message):
    __slots__ = ("model_id", "prompt", "enhance", "style_pack", "num_outputs", "aspect_ratio", "seed", "lora_scale", "output_format")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    ENHANCE_FIELD_NUMBER: _ClassVar[int]
    STYLE_PACK_FIELD_NUMBER: _ClassVar[int]
    NUM_OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    ASPECT_RATIO_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    LORA_SCALE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    prompt: str
    enhance: bool
    style_pack: str
    num_outputs: int
    aspect_ratio: str
    seed: int
    lora_scale: float
    output_format: str
    def __init__(self, model_id: _Optional[str] = ..., prompt: _Optional[str] = ..., enhance: _Optional[bool] = ..., style_pack: _Optional[str] = ..., num_outputs: _Optional[int] = ..., aspect_ratio: _Optional[str] = ..., seed: _Optional[int] = ..., lora_scale: _Optional[float] = ..., output_format: _Optional[str] = ...) -> None: ...

class CreateGenerationResponse(_message.Message):
    __slots__ = ("generation",)
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    generation: Generation
    def __init__(self, generation: _Optional[_Union[Generation, _Mapping]] = ...) -> None: ...

class Generation(_message.Message):
    __slots__ = ("id", "model_id", "prompt", "final_prompt", "enhanced", "degraded", "enhancement_reason", "style_pack", "num_outputs", "delivered", "aspect_ratio", "output_format", "failure_reason", "failure_message", "created_at", "started_at", "finished_at", "images", "seed", "status")
    ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    FINAL_PROMPT_FIELD_NUMBER: _ClassVar[int]
    ENHANCED_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FIELD_NUMBER: _ClassVar[int]
    ENHANCEMENT_REASON_FIELD_NUMBER: _ClassVar[int]
    STYLE_PACK_FIELD_NUMBER: _ClassVar[int]
    NUM_OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_FIELD_NUMBER: _ClassVar[int]
    ASPECT_RATIO_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    FAILURE_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    id: str
    model_id: str
    prompt: str
    final_prompt: str
    enhanced: bool
    degraded: bool
    enhancement_reason: str
    style_pack: str
    num_outputs: int
    delivered: int
    aspect_ratio: str
    output_format: str
    failure_reason: str
    failure_message: str
    created_at: _timestamp_pb2.Timestamp
    started_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    images: _containers.RepeatedCompositeFieldContainer[Image]
    seed: int
    status: GenerationStatus
    def __init__(self, id: _Optional[str] = ..., model_id: _Optional[str] = ..., prompt: _Optional[str] = ..., final_prompt: _Optional[str] = ..., enhanced: _Optional[bool] = ..., degraded: _Optional[bool] = ..., enhancement_reason: _Optional[str] = ..., style_pack: _Optional[str] = ..., num_outputs: _Optional[int] = ..., delivered: _Optional[int] = ..., aspect_ratio: _Optional[str] = ..., output_format: _Optional[str] = ..., failure_reason: _Optional[str] = ..., failure_message: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., images: _Optional[_Iterable[_Union[Image, _Mapping]]] = ..., seed: _Optional[int] = ..., status: _Optional[_Union[GenerationStatus, str]] = ...) -> None: ...

class GetGenerationRequest(_message.Message):
    __slots__ = ("generation_id",)
    GENERATION_ID_FIELD_NUMBER: _ClassVar[int]
    generation_id: str
    def __init__(self, generation_id: _Optional[str] = ...) -> None: ...

class GetGenerationResponse(_message.Message):
    __slots__ = ("generation",)
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    generation: Generation
    def __init__(self, generation: _Optional[_Union[Generation, _Mapping]] = ...) -> None: ...

class ListGenerationsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListGenerationsResponse(_message.Message):
    __slots__ = ("generations", "next_page_token")
    GENERATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    generations: _containers.RepeatedCompositeFieldContainer[Generation]
    next_page_token: str
    def __init__(self, generations: _Optional[_Iterable[_Union[Generation, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CancelGenerationRequest(_message.Message):
    __slots__ = ("generation_id",)
    GENERATION_ID_FIELD_NUMBER: _ClassVar[int]
    generation_id: str
    def __init__(self, generation_id: _Optional[str] = ...) -> None: ...

class CancelGenerationResponse(_message.Message):
    __slots__ = ("generation",)
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    generation: Generation
    def __init__(self, generation: _Optional[_Union[Generation, _Mapping]] = ...) -> None: ...

class Image(_message.Message):
    __slots__ = ("id", "generation_id", "model_id", "index", "content_type", "width", "height", "size_bytes", "blurhash", "favourite", "created_at", "url", "thumbnail_url", "download_url", "urls_expire_at", "prompt")
    ID_FIELD_NUMBER: _ClassVar[int]
    GENERATION_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    BLURHASH_FIELD_NUMBER: _ClassVar[int]
    FAVOURITE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    THUMBNAIL_URL_FIELD_NUMBER: _ClassVar[int]
    DOWNLOAD_URL_FIELD_NUMBER: _ClassVar[int]
    URLS_EXPIRE_AT_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    id: str
    generation_id: str
    model_id: str
    index: int
    content_type: str
    width: int
    height: int
    size_bytes: int
    blurhash: str
    favourite: bool
    created_at: _timestamp_pb2.Timestamp
    url: str
    thumbnail_url: str
    download_url: str
    urls_expire_at: _timestamp_pb2.Timestamp
    prompt: str
    def __init__(self, id: _Optional[str] = ..., generation_id: _Optional[str] = ..., model_id: _Optional[str] = ..., index: _Optional[int] = ..., content_type: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., size_bytes: _Optional[int] = ..., blurhash: _Optional[str] = ..., favourite: _Optional[bool] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., url: _Optional[str] = ..., thumbnail_url: _Optional[str] = ..., download_url: _Optional[str] = ..., urls_expire_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., prompt: _Optional[str] = ...) -> None: ...

class ListImagesRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "model_id", "favourites_only")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    FAVOURITES_ONLY_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    model_id: str
    favourites_only: bool
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., model_id: _Optional[str] = ..., favourites_only: _Optional[bool] = ...) -> None: ...

class ListImagesResponse(_message.Message):
    __slots__ = ("images", "next_page_token")
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    images: _containers.RepeatedCompositeFieldContainer[Image]
    next_page_token: str
    def __init__(self, images: _Optional[_Iterable[_Union[Image, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetImageRequest(_message.Message):
    __slots__ = ("image_id",)
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    image_id: str
    def __init__(self, image_id: _Optional[str] = ...) -> None: ...

class GetImageResponse(_message.Message):
    __slots__ = ("image",)
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    image: Image
    def __init__(self, image: _Optional[_Union[Image, _Mapping]] = ...) -> None: ...

class UpdateImageRequest(_message.Message):
    __slots__ = ("image_id", "favourite")
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    FAVOURITE_FIELD_NUMBER: _ClassVar[int]
    image_id: str
    favourite: bool
    def __init__(self, image_id: _Optional[str] = ..., favourite: _Optional[bool] = ...) -> None: ...

class UpdateImageResponse(_message.Message):
    __slots__ = ("image",)
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    image: Image
    def __init__(self, image: _Optional[_Union[Image, _Mapping]] = ...) -> None: ...

class DeleteImageRequest(_message.Message):
    __slots__ = ("image_id",)
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    image_id: str
    def __init__(self, image_id: _Optional[str] = ...) -> None: ...

class DeleteImageResponse(_message.Message):
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
