"""Request and response bodies of prompt enhancement and the style packs (routes/prompts.py)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from visiona.gateway.edge.inputs import RequestBody
from visiona.gateway.schemas import FromMessage


class EnhanceRequest(RequestBody):
    """A prompt to enrich for image generation."""

    prompt: str = Field(min_length=1, max_length=2000, examples=["me on a beach"])


class Enhancement(FromMessage):
    """A stored enhancement of one of the caller's prompts."""

    id: str
    prompt: str
    enhanced_prompt: str
    model: str
    input_tokens: int
    output_tokens: int
    created_at: datetime


class StylePack(FromMessage):
    """A curated look a prompt can be given (``pack`` when generating)."""

    id: str = Field(examples=["headshot"])
    name: str = Field(examples=["Headshot"])
    description: str
    templates: list[str] = Field(
        description="Prompt templates; `{subject}` is where the trigger word and prompt go"
    )
    negative_cues: list[str] = Field(description="What images in this style avoid")


class StylePacks(FromMessage):
    """The whole catalogue, in display order (small and curated: not paginated)."""

    packs: list[StylePack]
