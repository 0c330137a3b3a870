import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EnhancePromptRequest(_message.Message):
    __slots__ = ("prompt",)
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    prompt: str
    def __init__(self, prompt: _Optional[str] = ...) -> None: ...

class EnhancePromptResponse(_message.Message):
    __slots__ = ("enhancement",)
    ENHANCEMENT_FIELD_NUMBER: _ClassVar[int]
    enhancement: Enhancement
    def __init__(self, enhancement: _Optional[_Union[Enhancement, _Mapping]] = ...) -> None: ...

class Enhancement(_message.Message):
    __slots__ = ("id", "prompt", "enhanced_prompt", "model", "input_tokens", "output_tokens", "created_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    ENHANCED_PROMPT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    prompt: str
    enhanced_prompt: str
    model: str
    input_tokens: int
    output_tokens: int
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., prompt: _Optional[str] = ..., enhanced_prompt: _Optional[str] = ..., model: _Optional[str] = ..., input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListStylePacksRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListStylePacksResponse(_message.Message):
    __slots__ = ("packs",)
    PACKS_FIELD_NUMBER: _ClassVar[int]
    packs: _containers.RepeatedCompositeFieldContainer[StylePack]
    def __init__(self, packs: _Optional[_Iterable[_Union[StylePack, _Mapping]]] = ...) -> None: ...

class StylePack(_message.Message):
    __slots__ = ("id", "name", "description", "templates", "negative_cues")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TEMPLATES_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_CUES_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    description: str
    templates: _containers.RepeatedScalarFieldContainer[str]
    negative_cues: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., templates: _Optional[_Iterable[str]] = ..., negative_cues: _Optional[_Iterable[str]] = ...) -> None: ...

class PreparePromptRequest(_message.Message):
    __slots__ = ("prompt", "trigger_word", "style_pack", "enhance")
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_WORD_FIELD_NUMBER: _ClassVar[int]
    STYLE_PACK_FIELD_NUMBER: _ClassVar[int]
    ENHANCE_FIELD_NUMBER: _ClassVar[int]
    prompt: str
    trigger_word: str
    style_pack: str
    enhance: bool
    def __init__(self, prompt: _Optional[str] = ..., trigger_word: _Optional[str] = ..., style_pack: _Optional[str] = ..., enhance: _Optional[bool] = ...) -> None: ...

class PreparePromptResponse(_message.Message):
    __slots__ = ("prompt", "enhanced", "degraded", "refused", "refusal_reason", "refusal_message", "reason", "enhancement_id")
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    ENHANCED_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    REFUSAL_REASON_FIELD_NUMBER: _ClassVar[int]
    REFUSAL_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ENHANCEMENT_ID_FIELD_NUMBER: _ClassVar[int]
    prompt: str
    enhanced: bool
    degraded: bool
    refused: bool
    refusal_reason: str
    refusal_message: str
    reason: str
    enhancement_id: str
    def __init__(self, prompt: _Optional[str] = ..., enhanced: _Optional[bool] = ..., degraded: _Optional[bool] = ..., refused: _Optional[bool] = ..., refusal_reason: _Optional[str] = ..., refusal_message: _Optional[str] = ..., reason: _Optional[str] = ..., enhancement_id: _Optional[str] = ...) -> None: ...
