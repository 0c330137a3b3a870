"""Request and response bodies of the REST API, one module per route area (routes/<area>.py),
and the one rule by which a back service's message becomes a response body."""

from __future__ import annotations

import functools
import types
import typing
from dataclasses import dataclass
from datetime import UTC
from typing import Any, Self, TypeVar

from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper
from google.protobuf.message import Message
from pydantic import BaseModel, GetCoreSchemaHandler
from pydantic_core import core_schema

from visiona.kit import protoenum

Body = TypeVar("Body", bound=BaseModel)

_TIMESTAMP = "google.protobuf.Timestamp"


def from_message(body: type[Body], message: Message, **fields: Any) -> Body:
    """``body`` from ``message``: each of its fields not given in ``fields`` is the message's
    field of the same name, as the REST API spells it. A repeated field is a list, a map a
    dict, a Timestamp an aware UTC datetime, an enum its state's string (visiona.kit.protoenum);
    where the body allows None, a field the message
    does not set (an empty scalar, or one with presence left unset) is None; a body (or a
    list of them) that is itself a :class:`FromMessage` maps from its message."""
    by_name = message.DESCRIPTOR.fields_by_name
    for name, info in body.model_fields.items():
        if name in fields:
            continue
        field = by_name[name]
        value = getattr(message, name)
        if field.is_repeated:
            map_entry = field.message_type is not None and field.message_type.GetOptions().map_entry
            value = dict(value) if map_entry else list(value)
        elif _allows_none(info.annotation) and (
            not message.HasField(name) if field.has_presence else not value
        ):
            value = None
        elif field.message_type is not None and field.message_type.full_name == _TIMESTAMP:
            value = value.ToDatetime(tzinfo=UTC)
        elif field.enum_type is not None:
            value = protoenum.to_string(_enum(field.enum_type), value)  # type: ignore[arg-type]
        if (nested := _body_of(info.annotation)) is not None:
            value = (
                [nested.from_proto(v) for v in value]
                if field.is_repeated
                else nested.from_proto(value)
            )
        fields[name] = value
    return body(**fields)


@functools.cache
def _enum(descriptor: Any) -> EnumTypeWrapper:
    """The enum a field's descriptor names (one wrapper each: protoenum caches by it)."""
    return EnumTypeWrapper(descriptor)


@dataclass(frozen=True)
class EnumStrings:
    """``Annotated[str, EnumStrings(enum)]``: one of the states of a proto enum as strings
    (visiona.kit.protoenum), an ``enum`` in the OpenAPI. The gateway lists no state of its
    own: the proto's enum is the list."""

    enum: type[int]

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.literal_schema(list(protoenum.strings(self.enum)))


def _body_of(annotation: Any) -> type[FromMessage] | None:
    """The body a field holds (alone or in a list) that maps from a message of its own."""
    if typing.get_origin(annotation) is list:
        (annotation,) = typing.get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, FromMessage):
        return annotation
    return None


def _allows_none(annotation: Any) -> bool:
    if typing.get_origin(annotation) not in (typing.Union, types.UnionType):
        return False
    return type(None) in typing.get_args(annotation)


class Failure(BaseModel):
    reason: str
    message: str | None

    @classmethod
    def of(cls, message: Any) -> Failure | None:
        """Why a job ``message`` (a training's model, a generation) failed, None if it did
        not: its ``failure_reason`` and ``failure_message``."""
        if not message.failure_reason:
            return None
        return cls(reason=message.failure_reason, message=message.failure_message or None)


class FromMessage(BaseModel):
    """A response body that a back service's message maps to by :func:`from_message`."""

    @classmethod
    def from_proto(cls, message: Any) -> Self:
        return from_message(cls, message)


class Page(FromMessage):
    """A page of a list: its items, and ``next_cursor``, the service's ``next_page_token``
    (None on the last page)."""

    @classmethod
    def from_proto(cls, message: Any) -> Self:
        return from_message(cls, message, next_cursor=message.next_page_token or None)
