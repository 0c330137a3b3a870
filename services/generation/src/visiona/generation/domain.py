"""Generation rules, free of I/O: states, request checks, provider outputs.

A generation moves ``awaiting_credits → queued → running → succeeded | failed | canceled``.
Billing's answer, webhooks, the reconciler and the user race; a change applies only if it moves
the generation forward, and a finished one never changes.
"""

from __future__ import annotations

import enum
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from visiona.kit.errors import InvalidArgument

ASPECT_RATIOS = ("1:1", "16:9", "21:9", "3:2", "2:3", "4:5", "5:4", "3:4", "4:3", "9:16", "9:21")
OUTPUT_FORMATS = {"webp": "image/webp", "jpg": "image/jpeg", "png": "image/png"}
MAX_PROMPT = 2000
MAX_SEED = 2**31 - 1


class GenerationStatus(enum.StrEnum):
    AWAITING_CREDITS = "awaiting_credits"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def terminal(self) -> bool:
        return self in (
            GenerationStatus.SUCCEEDED,
            GenerationStatus.FAILED,
            GenerationStatus.CANCELED,
        )

    @property
    def rank(self) -> int:
        return 3 if self.terminal else _RANK[self]


_RANK = {
    GenerationStatus.AWAITING_CREDITS: 0,
    GenerationStatus.QUEUED: 1,
    GenerationStatus.RUNNING: 2,
}


def can_advance(current: GenerationStatus, new: GenerationStatus) -> bool:
    return not current.terminal and new.rank > current.rank


@dataclass(frozen=True)
class Request:
    """A checked generation request."""

    model_id: str
    prompt: str
    enhance: bool
    style_pack: str | None
    num_outputs: int
    aspect_ratio: str
    seed: int | None
    lora_scale: float
    output_format: str


def check_request(
    *,
    model_id: str,
    prompt: str,
    enhance: bool,
    style_pack: str | None,
    num_outputs: int,
    aspect_ratio: str | None,
    seed: int | None,
    lora_scale: float | None,
    output_format: str | None,
) -> Request:
    text = " ".join((prompt or "").split())
    if not 1 <= len(text) <= MAX_PROMPT:
        raise InvalidArgument(f"prompt must be 1-{MAX_PROMPT} characters", code="prompt_invalid")
    if not 1 <= num_outputs <= 4:
        raise InvalidArgument("num_outputs must be 1-4", code="num_outputs_invalid")
    ratio = aspect_ratio or "1:1"
    if ratio not in ASPECT_RATIOS:
        raise InvalidArgument(
            f"aspect_ratio must be one of {', '.join(ASPECT_RATIOS)}", code="aspect_ratio_invalid"
        )
    fmt = output_format or "webp"
    if fmt not in OUTPUT_FORMATS:
        raise InvalidArgument(
            "output_format must be webp, jpg or png", code="output_format_invalid"
        )
    if seed is not None and not 0 <= seed <= MAX_SEED:
        raise InvalidArgument(f"seed must be 0-{MAX_SEED}", code="seed_invalid")
    scale = 1.0 if lora_scale is None else lora_scale
    if not -1.0 <= scale <= 2.0:
        raise InvalidArgument("lora_scale must be between -1 and 2", code="lora_scale_invalid")
    return Request(
        model_id=model_id,
        prompt=text,
        enhance=enhance,
        style_pack=style_pack or None,
        num_outputs=num_outputs,
        aspect_ratio=ratio,
        seed=seed,
        lora_scale=scale,
        output_format=fmt,
    )


# The provider's prediction status → ours. ``succeeded`` is final for us only once every
# output is in our storage (or given up), which the ingest step records.
PROVIDER_STATUS = {
    "starting": GenerationStatus.QUEUED,
    "processing": GenerationStatus.RUNNING,
    "succeeded": GenerationStatus.SUCCEEDED,
    "failed": GenerationStatus.FAILED,
    "canceled": GenerationStatus.CANCELED,
}
PROVIDER_FINAL = frozenset({"succeeded", "failed", "canceled"})


def provider_running(
    prediction_id: str | None, launch_attempted_at: datetime | None, provider_status: str | None
) -> bool:
    """Whether a prediction may be running (or about to) at the provider, so that stopping the
    generation must cancel it there: one was started, or an attempt's answer was lost."""
    return bool(prediction_id or launch_attempted_at) and provider_status not in PROVIDER_FINAL


def provider_failure_reason(error: str | None) -> str:
    """Why a failed prediction failed, as the outcome's reason: its safety filter blocked the
    images, or anything else went wrong."""
    return "blocked" if "nsfw" in (error or "").lower() else "provider_failed"


def outputs_to_ingest(outputs: list[str], num_outputs: int) -> list[str]:
    """The provider's outputs we copy: never more than were asked (and held credits for)."""
    return outputs[:num_outputs]


def outcome_of_ingest(delivered: int) -> GenerationStatus:
    """The end of a generation once every output that could be stored is: succeeded with the
    stored images (billing captures those and releases the rest), or failed when none could be
    (billing releases everything)."""
    return GenerationStatus.FAILED if delivered == 0 else GenerationStatus.SUCCEEDED


def output_urls(output: Any) -> list[str]:
    """A prediction's output as a list of file URLs (one string or a list of them)."""
    if isinstance(output, str):
        return [output]
    if isinstance(output, list):
        return [str(item) for item in output if isinstance(item, str) and item]
    return []


def version_id(version: str) -> str:
    """``owner/name:id`` → ``id`` (what ``POST /v1/predictions`` takes)."""
    return version.rsplit(":", 1)[-1]


OWNER_KEY = re.compile(r"[0-9a-f]{32}")


def image_key_base(owner: str, generation_id: uuid.UUID, index: int) -> str:
    """Where an output and its thumbnail are stored, less the extension: under the prefix of
    the user's opaque owner key (:func:`owner_images_prefix`, visiona.kit.owners), which
    erasure deletes. No user id in a key: listings and access logs name nobody."""
    return f"{owner_images_prefix(owner)}{generation_id}/{index}"


def owner_images_prefix(owner: str) -> str:
    """The prefix holding every image of the user whose owner key is ``owner``."""
    if not OWNER_KEY.fullmatch(owner):
        raise ValueError("not an owner key")
    return f"images/{owner}/"
