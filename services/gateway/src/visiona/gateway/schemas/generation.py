"""Request and response bodies of generations and the gallery (routes/generation.py), and
how a generation message becomes one."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from visiona.gateway.edge.inputs import RequestBody
from visiona.gateway.schemas import EnumStrings, Failure, FromMessage, Page, from_message
from visiona.generation.v1 import generation_pb2

AspectRatio = Literal[
    "1:1", "16:9", "21:9", "3:2", "2:3", "4:5", "5:4", "3:4", "4:3", "9:16", "9:21"
]
GenerationStatus = Annotated[str, EnumStrings(generation_pb2.GenerationStatus)]


class CreateGenerationRequest(RequestBody):
    model_id: str = Field(min_length=1, max_length=64)
    prompt: str = Field(min_length=1, max_length=2000)
    enhance: bool = Field(default=False, description="Let the LLM enrich the prompt")
    pack: str | None = Field(default=None, max_length=64, description="A style pack id")
    num_outputs: int = Field(default=1, ge=1, le=4)
    aspect_ratio: AspectRatio = "1:1"
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)
    lora_scale: float | None = Field(default=None, ge=-1, le=2)
    output_format: Literal["webp", "jpg", "png"] = "webp"


class Image(FromMessage):
    id: str
    generation_id: str
    model_id: str
    index: int
    content_type: str
    width: int
    height: int
    size_bytes: int
    blurhash: str = Field(description="A BlurHash placeholder to show while loading")
    favourite: bool
    created_at: datetime
    url: str = Field(description="Short-lived URL of the full image")
    thumbnail_url: str = Field(description="Short-lived URL of a WebP thumbnail")
    download_url: str = Field(description="Short-lived URL that downloads the image as a file")
    urls_expire_at: datetime
    prompt: str


class Generation(FromMessage):
    id: str
    model_id: str
    status: GenerationStatus
    prompt: str
    final_prompt: str = Field(description="What was sent to the image model")
    enhanced: bool
    degraded: bool = Field(
        description="True when the LLM was unreachable and your own prompt was used"
    )
    enhancement_reason: str | None
    pack: str | None
    num_outputs: int
    delivered: int = Field(description="Images stored in your gallery (and paid for)")
    aspect_ratio: str
    output_format: str
    seed: int | None
    failure: Failure | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    images: list[Image]

    @classmethod
    def from_proto(cls, g: generation_pb2.Generation) -> Generation:
        return from_message(
            cls,
            g,
            pack=g.style_pack or None,
            failure=Failure.of(g),
        )


class GenerationPage(Page):
    generations: list[Generation]
    next_cursor: str | None


class ImagePage(Page):
    images: list[Image]
    next_cursor: str | None


class ImagePatch(RequestBody):
    favourite: bool
