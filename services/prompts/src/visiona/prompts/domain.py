"""Prompt enhancement: the rules, free of I/O."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from visiona.kit.errors import InvalidArgument

MAX_PROMPT_CHARS = 2000

SYSTEM_PROMPT = (
    "You rewrite short prompts for a text-to-image model (Flux) that generates photos of one "
    "specific person. Keep every subject word the user wrote, including any trigger token, "
    "and add concrete visual detail: setting, lighting, lens and camera, composition, mood. "
    "Answer with the rewritten prompt only, one paragraph, under 120 words."
)


def clean_prompt(prompt: str) -> str:
    """The prompt as it will be sent; raises for empty or oversized input."""
    text = " ".join(prompt.split())
    if not text:
        raise InvalidArgument("the prompt is empty", code="prompt_empty")
    if len(text) > MAX_PROMPT_CHARS:
        raise InvalidArgument(
            f"the prompt is longer than {MAX_PROMPT_CHARS} characters", code="prompt_too_long"
        )
    return text


@dataclass(frozen=True)
class Completion:
    """What the LLM answered."""

    text: str
    model: str
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class Enhancement:
    id: uuid.UUID
    user_id: str
    prompt: str
    enhanced_prompt: str
    model: str
    input_tokens: int
    output_tokens: int
    created_at: datetime
