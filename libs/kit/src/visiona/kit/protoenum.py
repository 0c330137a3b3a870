"""Statuses cross service boundaries as proto enums and are lowercase strings everywhere else:
a domain's StrEnum, a CHECK constraint, the REST API.

buf lint prefixes every value of a proto enum with the enum's name and names its zero value
``..._UNSPECIFIED``: ``PhotoStatus`` has ``PHOTO_STATUS_UNSPECIFIED = 0``,
``PHOTO_STATUS_ACCEPTED_WITH_WARNINGS``, ... A value's string is its name without the prefix,
lowercased (``accepted_with_warnings``). The mapping goes by name, so no list of states is
written twice, and a string or number the enum does not have (the unspecified zero included)
raises :class:`ValueError` instead of becoming a default. tests/test_status_contracts.py
checks that a service's domain, its proto enum and its CHECK constraint name the same states.
"""

from __future__ import annotations

import functools
from typing import TypeVar, cast

from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper

E = TypeVar("E", bound=int)


@functools.cache
def _table(enum: EnumTypeWrapper) -> dict[str, int]:
    """String → number, in the proto's order, without the unspecified zero."""
    descriptor = enum.DESCRIPTOR
    zero = descriptor.values_by_number.get(0)
    if zero is None or not zero.name.endswith("_UNSPECIFIED"):
        raise TypeError(f"{descriptor.full_name} has no ..._UNSPECIFIED zero value")
    prefix = zero.name.removesuffix("UNSPECIFIED")
    table: dict[str, int] = {}
    for value in descriptor.values:
        if value.number == 0:
            continue
        if not value.name.startswith(prefix):
            raise TypeError(f"{descriptor.full_name}.{value.name} lacks the prefix {prefix}")
        table[value.name.removeprefix(prefix).lower()] = value.number
    return table


@functools.cache
def _inverse(enum: EnumTypeWrapper) -> dict[int, str]:
    return {number: string for string, number in _table(enum).items()}


def strings(enum: type[int]) -> tuple[str, ...]:
    """Every state of ``enum`` as its string, in the proto's order (the unspecified zero is
    not a state)."""
    return tuple(_table(cast(EnumTypeWrapper, enum)))


def to_proto(enum: type[E], value: str) -> E:
    """The proto value of the state ``value`` (``"accepted"`` → ``PHOTO_STATUS_ACCEPTED``)."""
    wrapper = cast(EnumTypeWrapper, enum)
    try:
        return cast(E, _table(wrapper)[value])
    except KeyError:
        raise ValueError(f"{wrapper.DESCRIPTOR.full_name} has no state {value!r}") from None


def to_string(enum: type[int], number: int) -> str:
    """The string of the proto value ``number`` (``PHOTO_STATUS_ACCEPTED`` → ``"accepted"``)."""
    wrapper = cast(EnumTypeWrapper, enum)
    try:
        return _inverse(wrapper)[number]
    except KeyError:
        raise ValueError(f"{wrapper.DESCRIPTOR.full_name} has no state {number}") from None
