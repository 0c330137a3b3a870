"""The event catalogue: explicit routing keys, frozen models, round trips."""

from __future__ import annotations

import uuid
from typing import ClassVar

import pydantic
import pytest

from visiona.kit.events import (
    CATALOGUE,
    Event,
    PromptEnhancementCreatedV1,
    UnknownEvent,
    decode_event,
)


def test_events_are_catalogued_by_routing_key() -> None:
    assert CATALOGUE["prompts.enhancement.created.v1"] is PromptEnhancementCreatedV1


def test_event_round_trips_through_json() -> None:
    event = PromptEnhancementCreatedV1(
        user_id="user_a", enhancement_id=uuid.uuid4(), model="m", input_tokens=1, output_tokens=2
    )
    decoded = decode_event(event.routing_key, event.model_dump_json().encode())
    assert decoded == event


def test_events_are_frozen() -> None:
    event = PromptEnhancementCreatedV1(
        user_id="user_a", enhancement_id=uuid.uuid4(), model="m", input_tokens=1, output_tokens=2
    )
    with pytest.raises(pydantic.ValidationError):
        event.model = "other"  # type: ignore[misc]


def test_unknown_routing_key_is_refused() -> None:
    with pytest.raises(UnknownEvent):
        decode_event("nobody.thing.happened.v1", b"{}")


def test_malformed_routing_key_is_refused_at_definition() -> None:
    with pytest.raises(ValueError, match="routing key"):

        class BadV1(Event):
            routing_key: ClassVar[str] = "no-version-here"


def test_a_routing_key_cannot_be_defined_twice() -> None:
    with pytest.raises(ValueError, match="twice"):

        class DuplicateV1(Event):
            routing_key: ClassVar[str] = "prompts.enhancement.created.v1"
