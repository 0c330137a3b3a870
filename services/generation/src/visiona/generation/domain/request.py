"""A generation request as the user sends it, checked: the prompt, how many images, their
shape and format, and the model's options. What cannot be generated is refused with a code the
API shows."""

from __future__ import annotations

from dataclasses import dataclass

from visiona.generation.domain.image import OUTPUT_FORMATS
from visiona.kit.errors import InvalidArgument

ASPECT_RATIOS = ("1:1", "16:9", "21:9", "3:2", "2:3", "4:5", "5:4", "3:4", "4:3", "9:16", "9:21")
MAX_PROMPT = 2000
MAX_SEED = 2**31 - 1


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
    enhance: bool = False,
    style_pack: str | None = None,
    num_outputs: int = 1,
    aspect_ratio: str | None = None,
    seed: int | None = None,
    lora_scale: float | None = None,
    output_format: str | None = None,
) -> Request:
    """The request as the user sent it, checked; an unset option takes its default."""
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
