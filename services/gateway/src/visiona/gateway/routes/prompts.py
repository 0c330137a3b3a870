"""Prompt enhancement and the catalogue of style packs."""

from __future__ import annotations

from fastapi import APIRouter, Request

from visiona.gateway.clients import user_call
from visiona.gateway.edge.auth import CurrentUser
from visiona.gateway.edge.openapi import problems, unavailable
from visiona.gateway.schemas.prompts import Enhancement, EnhanceRequest, StylePacks
from visiona.prompts.v1 import prompts_pb2

router = APIRouter(tags=["prompts"], responses=unavailable("The prompts service is unavailable"))


# Enhancement waits on the LLM as well: its refusals, and its own 503.
ERRORS = problems(
    {
        409: "The LLM refused our credentials (`llm_not_configured`)",
        422: "Invalid prompt; or refused by moderation (`prompt_refused`, the same answer a "
        "generation with it gets), or by the LLM as a request (`llm_rejected_prompt`)",
        429: "The LLM is rate limiting us (`llm_rate_limited`)",
        503: "The LLM or the prompts service is unavailable",
    }
)


@router.post(
    "/prompts/enhance",
    response_model=Enhancement,
    status_code=201,
    responses=ERRORS,
    summary="Enrich a prompt with the LLM and keep the result",
    operation_id="enhancePrompt",
)
async def enhance_prompt(body: EnhanceRequest, request: Request, user: CurrentUser) -> Enhancement:
    backends, call = user_call(request, user.user_id)
    # Enhancement waits on an LLM.
    call["timeout"] = backends.settings.llm_deadline_s
    r = await backends.prompts.EnhancePrompt(
        prompts_pb2.EnhancePromptRequest(prompt=body.prompt), **call
    )
    return Enhancement.from_proto(r.enhancement)


@router.get(
    "/prompts/packs",
    response_model=StylePacks,
    summary="The catalogue of style packs",
    operation_id="listStylePacks",
)
async def list_style_packs(request: Request, user: CurrentUser) -> StylePacks:
    backends, call = user_call(request, user.user_id)
    r = await backends.prompts.ListStylePacks(prompts_pb2.ListStylePacksRequest(), **call)
    return StylePacks.from_proto(r)
