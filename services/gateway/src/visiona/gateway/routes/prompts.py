"""Prompt enhancement and the catalogue of style packs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from visiona.gateway.auth import CurrentUser
from visiona.gateway.clients import Backends, call_metadata
from visiona.gateway.inputs import RequestBody
from visiona.gateway.problems import Problem
from visiona.prompts.v1 import prompts_pb2

router = APIRouter(tags=["prompts"])


class EnhanceRequest(RequestBody):
    """A prompt to enrich for image generation."""

    prompt: str = Field(min_length=1, max_length=2000, examples=["me on a beach"])


class Enhancement(BaseModel):
    """A stored enhancement of one of the caller's prompts."""

    id: str
    prompt: str
    enhanced_prompt: str
    model: str
    input_tokens: int
    output_tokens: int
    created_at: datetime


class StylePack(BaseModel):
    """A curated look a prompt can be given (``pack`` when generating)."""

    id: str = Field(examples=["headshot"])
    name: str = Field(examples=["Headshot"])
    description: str
    templates: list[str] = Field(
        description="Prompt templates; `{subject}` is where the trigger word and prompt go"
    )
    negative_cues: list[str] = Field(description="What images in this style avoid")


class StylePacks(BaseModel):
    """The whole catalogue, in display order (small and curated: not paginated)."""

    packs: list[StylePack]


ERRORS = {
    401: {"model": Problem, "description": "Missing or invalid session token"},
    409: {
        "model": Problem,
        "description": "The LLM refused our credentials (`llm_not_configured`)",
    },
    422: {
        "model": Problem,
        "description": "Invalid prompt; or refused by moderation (`prompt_refused`, the same "
        "answer a generation with it gets), or by the LLM as a request (`llm_rejected_prompt`)",
    },
    429: {"model": Problem, "description": "The LLM is rate limiting us (`llm_rate_limited`)"},
    503: {"model": Problem, "description": "The LLM or the prompts service is unavailable"},
}


PACK_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Missing or invalid session token"},
    503: {"model": Problem, "description": "The prompts service is unavailable"},
}


@router.post(
    "/prompts/enhance",
    response_model=Enhancement,
    status_code=201,
    responses=ERRORS,  # type: ignore[arg-type]
    summary="Enrich a prompt with the LLM and keep the result",
    operation_id="enhancePrompt",
)
async def enhance_prompt(body: EnhanceRequest, request: Request, user: CurrentUser) -> Enhancement:
    backends: Backends = request.app.state.backends
    response = await backends.prompts.EnhancePrompt(
        prompts_pb2.EnhancePromptRequest(prompt=body.prompt),
        timeout=backends.settings.llm_deadline_s,
        metadata=call_metadata(user.user_id, request.state.request_id),
    )
    e = response.enhancement
    return Enhancement(
        id=e.id,
        prompt=e.prompt,
        enhanced_prompt=e.enhanced_prompt,
        model=e.model,
        input_tokens=e.input_tokens,
        output_tokens=e.output_tokens,
        created_at=e.created_at.ToDatetime(tzinfo=UTC),
    )


@router.get(
    "/prompts/packs",
    response_model=StylePacks,
    responses=PACK_ERRORS,
    summary="The catalogue of style packs",
    operation_id="listStylePacks",
)
async def list_style_packs(request: Request, user: CurrentUser) -> StylePacks:
    backends: Backends = request.app.state.backends
    response = await backends.prompts.ListStylePacks(
        prompts_pb2.ListStylePacksRequest(),
        timeout=backends.settings.grpc_deadline_s,
        metadata=call_metadata(user.user_id, request.state.request_id),
    )
    return StylePacks(
        packs=[
            StylePack(
                id=p.id,
                name=p.name,
                description=p.description,
                templates=list(p.templates),
                negative_cues=list(p.negative_cues),
            )
            for p in response.packs
        ]
    )
