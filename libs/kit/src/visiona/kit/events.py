"""The event catalogue: every integration event, versioned, frozen, with its routing key.

Routing keys follow ``<service>.<aggregate>.<past_verb>.v<n>``. Within a version, changes are
additive only; a breaking change is a new class with ``v<n+1>``. Events carry ids, not rows.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

CATALOGUE: dict[str, type[Event]] = {}


def _now() -> datetime:
    return datetime.now(UTC)


class Event(BaseModel):
    """Base of every integration event. Subclasses set ``routing_key``."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    routing_key: ClassVar[str]

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    occurred_at: datetime = Field(default_factory=_now)
    user_id: str | None = None

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        key = cls.__dict__.get("routing_key")
        if key is None:
            return
        parts = key.split(".")
        if len(parts) != 4 or not parts[3].startswith("v") or not parts[3][1:].isdigit():
            raise ValueError(f"routing key {key!r} is not <service>.<aggregate>.<verb>.v<n>")
        if key in CATALOGUE:
            raise ValueError(f"routing key {key!r} is defined twice")
        CATALOGUE[key] = cls


class UnknownEvent(LookupError):
    """A message whose routing key the catalogue does not know."""


def decode_event(routing_key: str, body: bytes) -> Event:
    try:
        cls = CATALOGUE[routing_key]
    except KeyError:
        raise UnknownEvent(routing_key) from None
    return cls.model_validate_json(body)


# --- prompts -------------------------------------------------------------------------------


class PromptEnhancementCreatedV1(Event):
    """The prompts service stored an LLM enhancement of a user's prompt.

    Billing records it as usage (tokens consumed by the user's request).
    """

    routing_key: ClassVar[str] = "prompts.enhancement.created.v1"

    user_id: str
    enhancement_id: uuid.UUID
    model: str
    input_tokens: int
    output_tokens: int
