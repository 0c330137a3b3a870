from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class GetUsageSummaryRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetUsageSummaryResponse(_message.Message):
    __slots__ = ("enhancements", "llm_tokens")
    ENHANCEMENTS_FIELD_NUMBER: _ClassVar[int]
    LLM_TOKENS_FIELD_NUMBER: _ClassVar[int]
    enhancements: int
    llm_tokens: int
    def __init__(self, enhancements: _Optional[int] = ..., llm_tokens: _Optional[int] = ...) -> None: ...
