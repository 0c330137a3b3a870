"""Generation rules: the monotonic state machine, request checks, what the provider says, the
outcome billing settles, and where images are stored."""

from __future__ import annotations

import itertools
import math
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from visiona.generation.domain import (
    ASPECT_RATIOS,
    MAX_PROMPT,
    MAX_SEED,
    OUTPUT_FORMATS,
    PROVIDER_FINAL,
    PROVIDER_STATUS,
    GenerationStatus,
    Request,
    can_advance,
    check_request,
    image_key_base,
    outcome_of_ingest,
    output_urls,
    outputs_to_ingest,
    owner_images_prefix,
    provider_failure_reason,
    provider_running,
    version_id,
)
from visiona.kit.errors import InvalidArgument

FLOW = [
    GenerationStatus.AWAITING_CREDITS,
    GenerationStatus.QUEUED,
    GenerationStatus.RUNNING,
    GenerationStatus.SUCCEEDED,
]
ENDS = [GenerationStatus.SUCCEEDED, GenerationStatus.FAILED, GenerationStatus.CANCELED]
REQUEST_CODES = {
    "prompt_invalid",
    "num_outputs_invalid",
    "aspect_ratio_invalid",
    "output_format_invalid",
    "seed_invalid",
    "lora_scale_invalid",
}


def request(**overrides: Any) -> Request:
    args: dict[str, Any] = {
        "model_id": "0b7f6c1e-4a57-4b9f-8d3c-2f4a1e9b6c70",
        "prompt": "TOK on a beach",
        "enhance": False,
        "style_pack": None,
        "num_outputs": 1,
        "aspect_ratio": None,
        "seed": None,
        "lora_scale": None,
        "output_format": None,
    }
    return check_request(**(args | overrides))


def refused(**overrides: Any) -> str:
    with pytest.raises(InvalidArgument) as info:
        request(**overrides)
    assert info.value.code is not None
    return info.value.code


# -- the state machine ---------------------------------------------------------------------------


def test_the_happy_path_only_moves_forward() -> None:
    for earlier, later in itertools.combinations(FLOW, 2):
        assert can_advance(earlier, later)
        assert not can_advance(later, earlier)


def test_a_repeated_update_is_ignored() -> None:
    for status in GenerationStatus:
        assert not can_advance(status, status)


def test_a_finished_generation_never_changes() -> None:
    for end, new in itertools.product(ENDS, GenerationStatus):
        assert not can_advance(end, new)


def test_only_succeeded_failed_and_canceled_are_final() -> None:
    assert {s for s in GenerationStatus if s.terminal} == set(ENDS)


def test_a_generation_can_fail_or_be_canceled_from_any_unfinished_state() -> None:
    for status in FLOW[:-1]:
        assert can_advance(status, GenerationStatus.FAILED)
        assert can_advance(status, GenerationStatus.CANCELED)


@given(st.lists(st.sampled_from(GenerationStatus), max_size=20))
def test_updates_in_any_order_move_forward_and_stop_at_the_first_end(
    updates: list[GenerationStatus],
) -> None:
    state = GenerationStatus.AWAITING_CREDITS
    applied = [state]
    for new in updates:
        if can_advance(state, new):
            state = new
            applied.append(state)
    assert all(a.rank < b.rank for a, b in itertools.pairwise(applied))
    assert not any(s.terminal for s in applied[:-1])
    first_end = next((s for s in updates if s.terminal), None)
    if first_end is not None:
        assert state is first_end


# -- request checks -------------------------------------------------------------------------------


def test_a_request_without_options_gets_the_defaults() -> None:
    req = request(style_pack="")
    assert (req.aspect_ratio, req.output_format, req.lora_scale) == ("1:1", "webp", 1.0)
    assert req.seed is None and req.style_pack is None


def test_a_seed_and_lora_scale_of_zero_are_kept_not_defaulted() -> None:
    req = request(seed=0, lora_scale=0.0)
    assert req.seed == 0 and req.lora_scale == 0.0


def test_whitespace_in_the_prompt_is_collapsed_before_its_length_is_checked() -> None:
    assert request(prompt="  TOK \n on\ta   beach ").prompt == "TOK on a beach"
    assert len(request(prompt="   " + "x" * MAX_PROMPT + "   ").prompt) == MAX_PROMPT


@pytest.mark.parametrize("prompt", ["", "   \n\t ", "x" * (MAX_PROMPT + 1)])
def test_an_empty_or_oversized_prompt_is_refused(prompt: str) -> None:
    assert refused(prompt=prompt) == "prompt_invalid"


@pytest.mark.parametrize(
    ("count", "ok"), [(-1, False), (0, False), (1, True), (4, True), (5, False)]
)
def test_a_generation_makes_one_to_four_images(count: int, ok: bool) -> None:
    if ok:
        assert request(num_outputs=count).num_outputs == count
    else:
        assert refused(num_outputs=count) == "num_outputs_invalid"


def test_every_listed_aspect_ratio_and_output_format_is_accepted() -> None:
    for ratio in ASPECT_RATIOS:
        assert request(aspect_ratio=ratio).aspect_ratio == ratio
    for fmt in OUTPUT_FORMATS:
        assert request(output_format=fmt).output_format == fmt


@pytest.mark.parametrize("ratio", ["1:2", "square", "16x9", " 1:1"])
def test_an_unknown_aspect_ratio_is_refused(ratio: str) -> None:
    assert refused(aspect_ratio=ratio) == "aspect_ratio_invalid"


@pytest.mark.parametrize("fmt", ["jpeg", "gif", "WEBP"])
def test_an_unknown_output_format_is_refused(fmt: str) -> None:
    assert refused(output_format=fmt) == "output_format_invalid"


@pytest.mark.parametrize(
    ("seed", "ok"), [(-1, False), (0, True), (MAX_SEED, True), (MAX_SEED + 1, False)]
)
def test_a_seed_fits_a_signed_32_bit_integer(seed: int, ok: bool) -> None:
    if ok:
        assert request(seed=seed).seed == seed
    else:
        assert refused(seed=seed) == "seed_invalid"


@pytest.mark.parametrize(
    ("scale", "ok"),
    [
        (-1.0, True),
        (2.0, True),
        (-1.01, False),
        (2.01, False),
        (math.nan, False),
        (math.inf, False),
    ],
)
def test_the_lora_scale_lies_between_minus_one_and_two(scale: float, ok: bool) -> None:
    if ok:
        assert request(lora_scale=scale).lora_scale == scale
    else:
        assert refused(lora_scale=scale) == "lora_scale_invalid"


@given(
    prompt=st.text(max_size=MAX_PROMPT + 50),
    num_outputs=st.integers(-2, 6),
    aspect_ratio=st.one_of(st.none(), st.sampled_from(ASPECT_RATIOS), st.text(max_size=5)),
    seed=st.one_of(st.none(), st.integers(-(2**40), 2**40)),
    lora_scale=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
    output_format=st.one_of(st.none(), st.sampled_from(list(OUTPUT_FORMATS)), st.text(max_size=5)),
)
def test_a_request_is_either_refused_with_a_known_code_or_within_every_limit(
    prompt: str,
    num_outputs: int,
    aspect_ratio: str | None,
    seed: int | None,
    lora_scale: float | None,
    output_format: str | None,
) -> None:
    try:
        req = request(
            prompt=prompt,
            num_outputs=num_outputs,
            aspect_ratio=aspect_ratio,
            seed=seed,
            lora_scale=lora_scale,
            output_format=output_format,
        )
    except InvalidArgument as exc:
        assert exc.code in REQUEST_CODES
        return
    assert 1 <= len(req.prompt) <= MAX_PROMPT and req.prompt == " ".join(req.prompt.split())
    assert 1 <= req.num_outputs <= 4
    assert req.aspect_ratio in ASPECT_RATIOS and req.output_format in OUTPUT_FORMATS
    assert req.seed is None or 0 <= req.seed <= MAX_SEED
    assert -1.0 <= req.lora_scale <= 2.0


# -- the provider ----------------------------------------------------------------------------------


def test_provider_statuses_map_onto_ours() -> None:
    assert PROVIDER_STATUS == {
        "starting": GenerationStatus.QUEUED,
        "processing": GenerationStatus.RUNNING,
        "succeeded": GenerationStatus.SUCCEEDED,
        "failed": GenerationStatus.FAILED,
        "canceled": GenerationStatus.CANCELED,
    }


def test_the_provider_statuses_that_end_a_prediction_are_the_ones_that_end_ours() -> None:
    assert {p for p, ours in PROVIDER_STATUS.items() if ours.terminal} == PROVIDER_FINAL


def test_a_late_provider_update_never_reopens_a_finished_generation() -> None:
    for end, update in itertools.product(ENDS, PROVIDER_STATUS.values()):
        assert not can_advance(end, update)
    # "starting" arriving after "processing" keeps the generation running.
    assert not can_advance(GenerationStatus.RUNNING, PROVIDER_STATUS["starting"])


@pytest.mark.parametrize(
    ("prediction_id", "attempted", "status", "running"),
    [
        (None, False, None, False),
        ("p1", False, "starting", True),
        ("p1", False, "processing", True),
        # The start was attempted but its answer lost: there may be a prediction to cancel.
        (None, True, None, True),
        ("p1", True, "succeeded", False),
        ("p1", True, "failed", False),
        ("p1", True, "canceled", False),
    ],
)
def test_a_prediction_is_canceled_at_the_provider_only_while_it_may_run(
    prediction_id: str | None, attempted: bool, status: str | None, running: bool
) -> None:
    attempted_at = datetime(2025, 1, 1, tzinfo=UTC) if attempted else None
    assert provider_running(prediction_id, attempted_at, status) is running


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        ("NSFW content detected. Try running it again, or try a different prompt.", "blocked"),
        ("All generated images contained nsfw content", "blocked"),
        ("CUDA out of memory", "provider_failed"),
        ("", "provider_failed"),
        (None, "provider_failed"),
    ],
)
def test_a_prediction_blocked_by_the_safety_filter_fails_as_blocked(
    error: str | None, reason: str
) -> None:
    assert provider_failure_reason(error) == reason


def test_a_single_output_url_becomes_a_list() -> None:
    assert output_urls("https://replicate.delivery/a.webp") == ["https://replicate.delivery/a.webp"]


def test_only_non_empty_strings_of_an_output_list_are_urls() -> None:
    assert output_urls(["https://r/a.webp", "", None, 3, {"url": "x"}, "https://r/b.webp"]) == [
        "https://r/a.webp",
        "https://r/b.webp",
    ]


@pytest.mark.parametrize("output", [None, {}, 42, {"images": ["https://r/a.webp"]}])
def test_an_output_of_another_shape_has_no_urls(output: object) -> None:
    assert output_urls(output) == []


@pytest.mark.parametrize(
    ("version", "expected"),
    [("owner/flux-lora:5a1b9c", "5a1b9c"), ("5a1b9c", "5a1b9c"), ("a:b:c", "c")],
)
def test_the_version_id_is_what_follows_the_last_colon(version: str, expected: str) -> None:
    assert version_id(version) == expected


# -- what billing settles -----------------------------------------------------------------------


@given(st.lists(st.text(min_size=1), max_size=8), st.integers(1, 4))
def test_never_more_outputs_are_ingested_than_were_asked_for(
    outputs: list[str], num_outputs: int
) -> None:
    kept = outputs_to_ingest(outputs, num_outputs)
    assert len(kept) == min(len(outputs), num_outputs)
    assert kept == outputs[: len(kept)]


@given(st.data())
def test_a_generation_succeeds_with_any_stored_image_and_fails_with_none(
    data: st.DataObject,
) -> None:
    requested = data.draw(st.integers(1, 4))
    delivered = data.draw(st.integers(0, requested))
    outcome = outcome_of_ingest(delivered)
    assert outcome.terminal and can_advance(GenerationStatus.RUNNING, outcome)
    expected = GenerationStatus.SUCCEEDED if delivered else GenerationStatus.FAILED
    assert outcome is expected


# -- where images are stored --------------------------------------------------------------------


def test_an_output_is_keyed_by_owner_key_generation_and_index() -> None:
    gen = uuid.UUID("6f1c2a4e-9b8d-4c3f-a7e5-1d2b3c4d5e6f")
    owner = "0123456789abcdef0123456789abcdef"
    assert image_key_base(owner, gen, 3) == f"images/{owner}/{gen}/3"


owner_keys = st.text(alphabet="0123456789abcdef", min_size=32, max_size=32)


@given(owner_keys, owner_keys, st.uuids(), st.integers(0, 3))
def test_erasing_a_user_removes_every_image_of_theirs_and_none_of_anyone_elses(
    owner: str, other: str, generation_id: uuid.UUID, index: int
) -> None:
    prefix = owner_images_prefix(owner)
    assert image_key_base(owner, generation_id, index).startswith(prefix)
    if other != owner:
        assert not image_key_base(other, generation_id, index).startswith(prefix)


@pytest.mark.parametrize("owner", ["user_2abc", "user_1/other", "", "0123456789ABCDEF" * 2])
def test_only_an_owner_key_has_a_prefix(owner: str) -> None:
    with pytest.raises(ValueError):
        owner_images_prefix(owner)
