"""Generation rules: the monotonic state machine, request checks, what the provider says, the
outcome billing settles, where images are stored, and every transition of the Generation
aggregate with the columns it changes and the events it raises (no I/O)."""

from __future__ import annotations

import itertools
import math
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from visiona.generation.domain.generation import (
    PROVIDER_FINAL,
    PROVIDER_STATUS,
    Generation,
    GenerationStatus,
    can_advance,
    outcome_of_ingest,
    output_urls,
    outputs_to_ingest,
    provider_failure_reason,
    provider_running,
    version_id,
)
from visiona.generation.domain.image import OUTPUT_FORMATS, image_key_base, owner_images_prefix
from visiona.generation.domain.request import (
    ASPECT_RATIOS,
    MAX_PROMPT,
    MAX_SEED,
    Request,
    check_request,
)
from visiona.kit.errors import InvalidArgument
from visiona.kit.events import (
    GenerationCanceledV1,
    GenerationFailedV1,
    GenerationRequestedV1,
    GenerationSucceededV1,
    ModelVersionMissingV1,
)

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
    st.fixed_dictionaries(
        {
            "prompt": st.text(max_size=MAX_PROMPT + 50),
            "num_outputs": st.integers(-2, 6),
            "aspect_ratio": st.one_of(
                st.none(), st.sampled_from(ASPECT_RATIOS), st.text(max_size=5)
            ),
            "seed": st.one_of(st.none(), st.integers(-(2**40), 2**40)),
            "lora_scale": st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
            "output_format": st.one_of(
                st.none(), st.sampled_from(list(OUTPUT_FORMATS)), st.text(max_size=5)
            ),
        }
    )
)
def test_a_request_is_either_refused_with_a_known_code_or_within_every_limit(
    fields: dict[str, Any],
) -> None:
    try:
        req = request(**fields)
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


# --- the Generation aggregate ---------------------------------------------------------------

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
HOLD = uuid.UUID("9a1c5d3e-6f2b-4e8a-b7c9-0d1e2f3a4b5c")


def generation(**fields: Any) -> Generation:
    """A generation as loaded: nothing changed, nothing raised."""
    row: dict[str, Any] = {
        "id": uuid.UUID("6f1c2a4e-9b8d-4c3f-a7e5-1d2b3c4d5e6f"),
        "user_id": "user_1",
        "model_id": uuid.UUID("0b7f6c1e-4a57-4b9f-8d3c-2f4a1e9b6c70"),
        "version": "owner/model:abc",
        "prompt": "TOK on a beach",
        "final_prompt": "TOK on a beach",
        "enhanced": False,
        "degraded": False,
        "enhancement_reason": None,
        "style_pack": None,
        "num_outputs": 2,
        "aspect_ratio": "1:1",
        "seed": None,
        "lora_scale": 1.0,
        "output_format": "webp",
        "status": "awaiting_credits",
        "hold_id": None,
        "provider_prediction_id": None,
        "provider_status": None,
        "launch_attempted_at": None,
        "output_urls": [],
        "delivered": 0,
        "failure_reason": None,
        "failure_message": None,
        "work": "ask_credits",
        "work_after": NOW,
        "work_attempts": 0,
        "lease_until": None,
        "provider_seen_at": None,
        "created_at": NOW,
        "started_at": None,
        "finished_at": None,
        "updated_at": NOW,
    }
    return Generation(**(row | fields))


def at_provider(status: str = "running", **fields: Any) -> Generation:
    """A launched generation, polled while no news comes."""
    row: dict[str, Any] = {
        "status": status,
        "hold_id": HOLD,
        "provider_prediction_id": "p1",
        "provider_status": "processing" if status == "running" else "starting",
        "work": "poll",
    }
    return generation(**(row | fields))


def unchanged(gen: Generation) -> bool:
    return gen.pull_changes() == {} and gen.pull_events() == []


def test_a_loaded_generation_has_nothing_to_save() -> None:
    assert unchanged(generation())


def test_changes_and_events_are_pulled_once() -> None:
    gen = generation()
    assert gen.cancel(NOW)
    assert gen.pull_changes() and gen.pull_events()
    assert unchanged(gen)


def test_pending_changes_are_no_part_of_a_generations_equality() -> None:
    changed = generation()
    changed.cancel(NOW)
    assert changed == generation(
        status="canceled",
        failure_reason="canceled_by_user",
        finished_at=NOW,
        work=None,
        work_after=None,
    )


def test_reserved_credits_queue_the_launch() -> None:
    gen = generation()
    assert gen.credits_reserved(HOLD, NOW)
    assert gen.pull_changes() == {
        "status": "queued",
        "hold_id": HOLD,
        "work": "launch",
        "work_after": NOW,
        "work_attempts": 0,
    }
    assert gen.pull_events() == []


def test_a_repeated_reservation_changes_nothing() -> None:
    gen = generation()
    gen.credits_reserved(HOLD, NOW)
    gen.pull_changes()
    assert not gen.credits_reserved(uuid.uuid4(), NOW + timedelta(seconds=1))
    assert gen.hold_id == HOLD
    assert unchanged(gen)


@pytest.mark.parametrize(
    ("status", "reason", "event"),
    [
        ("canceled", "canceled_by_user", GenerationCanceledV1),
        ("failed", "launch_failed", GenerationFailedV1),
    ],
)
def test_a_reservation_after_the_end_is_answered_with_the_outcome_again(
    status: str, reason: str, event: type[Any]
) -> None:
    gen = generation(status=status, failure_reason=reason, delivered=1, work=None)
    assert not gen.credits_reserved(HOLD, NOW)
    assert gen.pull_changes() == {}
    (answer,) = gen.pull_events()
    assert isinstance(answer, event)
    assert (answer.generation_id, answer.reason, answer.delivered) == (gen.id, reason, 1)


def test_a_reservation_after_success_raises_nothing() -> None:
    gen = generation(status="succeeded", delivered=2, work=None)
    assert not gen.credits_reserved(HOLD, NOW)
    assert unchanged(gen)


def test_rejected_credits_fail_the_generation_with_billings_reason() -> None:
    gen = generation()
    assert gen.credits_rejected("insufficient_credits", "these images cost 8 credits", NOW)
    changes = gen.pull_changes()
    assert changes == {
        "status": "failed",
        "failure_reason": "insufficient_credits",
        "failure_message": "these images cost 8 credits",
        "finished_at": NOW,
        "work": None,
        "work_after": None,
    }
    (failed,) = gen.pull_events()
    assert isinstance(failed, GenerationFailedV1)
    assert (failed.reason, failed.delivered) == ("insufficient_credits", 0)


@pytest.mark.parametrize("status", ["queued", "running", "succeeded", "failed", "canceled"])
def test_a_rejection_after_the_reservation_changes_nothing(status: str) -> None:
    gen = generation(status=status, work=None)
    assert not gen.credits_rejected("insufficient_credits", "no", NOW)
    assert unchanged(gen)


def test_an_expired_hold_fails_the_generation_and_cancels_its_prediction() -> None:
    gen = at_provider()
    assert gen.hold_expired(NOW)
    changes = gen.pull_changes()
    assert changes["status"] == "failed"
    assert changes["failure_reason"] == "hold_expired"
    assert (changes["work"], changes["work_after"], changes["work_attempts"]) == ("cancel", NOW, 0)
    (failed,) = gen.pull_events()
    assert isinstance(failed, GenerationFailedV1) and failed.reason == "hold_expired"


def test_an_expired_hold_of_a_finished_generation_changes_nothing() -> None:
    gen = generation(status="succeeded", delivered=2, work=None)
    assert not gen.hold_expired(NOW)
    assert unchanged(gen)


def test_a_failure_message_is_cut_to_500_characters() -> None:
    gen = generation(status="queued", work="launch")
    assert gen.fail("launch_failed", "x" * 600, NOW)
    assert gen.failure_message == "x" * 500


def test_a_generation_that_may_run_at_the_provider_is_canceled_there_when_it_ends() -> None:
    attempted = generation(status="queued", work="launch", launch_attempted_at=NOW)
    assert attempted.fail("launch_failed", "timeout", NOW)
    assert attempted.work == "cancel"
    never_started = generation(status="queued", work="launch")
    assert never_started.fail("launch_failed", "refused", NOW)
    assert (never_started.work, never_started.work_after) == (None, None)


@pytest.mark.parametrize("status", ["succeeded", "failed", "canceled"])
def test_a_finished_generation_neither_fails_nor_is_canceled_nor_succeeds(status: str) -> None:
    gen = generation(status=status, work=None, delivered=1)
    assert not gen.fail("launch_failed", "late", NOW)
    assert not gen.cancel(NOW)
    assert not gen.succeed(2, NOW)
    assert unchanged(gen)


def test_the_user_cancels_with_their_reason_and_what_was_delivered() -> None:
    gen = at_provider(delivered=1)
    assert gen.cancel(NOW)
    assert (gen.status, gen.failure_reason, gen.failure_message) == (
        "canceled",
        "canceled_by_user",
        None,
    )
    assert gen.work == "cancel"
    (canceled,) = gen.pull_events()
    assert isinstance(canceled, GenerationCanceledV1)
    assert (canceled.reason, canceled.delivered) == ("canceled_by_user", 1)


def test_success_records_what_was_delivered() -> None:
    gen = at_provider(work="ingest")
    assert gen.succeed(1, NOW)
    assert gen.pull_changes() == {
        "status": "succeeded",
        "delivered": 1,
        "finished_at": NOW,
        "work": None,
        "work_after": None,
    }
    (succeeded,) = gen.pull_events()
    assert isinstance(succeeded, GenerationSucceededV1)
    assert (succeeded.requested, succeeded.delivered) == (2, 1)


def test_success_with_no_stored_image_is_a_failure() -> None:
    gen = at_provider(work="ingest", provider_status="succeeded")
    assert gen.succeed(0, NOW)
    assert (gen.status, gen.failure_reason, gen.delivered) == ("failed", "outputs_unavailable", 0)
    (failed,) = gen.pull_events()
    assert isinstance(failed, GenerationFailedV1) and failed.delivered == 0


def test_a_missing_model_version_fails_the_generation_and_tells_training() -> None:
    gen = generation(status="queued", work="launch")
    assert gen.model_version_missing(NOW)
    assert gen.failure_reason == "model_unavailable"
    failed, missing = gen.pull_events()
    assert isinstance(failed, GenerationFailedV1)
    assert isinstance(missing, ModelVersionMissingV1)
    assert (missing.model_id, missing.generation_id) == (gen.model_id, gen.id)


def test_a_missing_model_version_is_told_even_when_the_generation_had_ended() -> None:
    gen = generation(status="canceled", work=None)
    assert not gen.model_version_missing(NOW)
    assert [type(e) for e in gen.pull_events()] == [ModelVersionMissingV1]


def test_credits_are_asked_again_while_billing_has_not_answered() -> None:
    gen = generation()
    assert gen.ask_credits_again(60, NOW)
    assert gen.pull_changes() == {"work_after": NOW + timedelta(seconds=60)}
    (asked,) = gen.pull_events()
    assert isinstance(asked, GenerationRequestedV1)
    assert (asked.generation_id, asked.num_outputs) == (gen.id, 2)


@pytest.mark.parametrize(("status", "work"), [("queued", "launch"), ("awaiting_credits", None)])
def test_credits_are_not_asked_again_once_answered(status: str, work: str | None) -> None:
    gen = generation(status=status, work=work)
    assert not gen.ask_credits_again(60, NOW)
    assert unchanged(gen)


def test_a_launch_attempt_is_recorded_only_while_queued() -> None:
    queued = generation(status="queued", work="launch")
    assert queued.launch_attempted(NOW, seen=None)
    assert queued.pull_changes() == {"launch_attempted_at": NOW}
    canceled = generation(status="canceled", work=None)
    assert not canceled.launch_attempted(NOW, seen=None)
    assert unchanged(canceled)


def test_a_launched_prediction_is_polled_after_the_quiet_time() -> None:
    gen = generation(status="queued", work="launch", launch_attempted_at=NOW)
    assert gen.launched("p1", "starting", NOW, 20)
    assert gen.pull_changes() == {
        "provider_prediction_id": "p1",
        "provider_status": "starting",
        "provider_seen_at": NOW,
        "work": "poll",
        "work_after": NOW + timedelta(seconds=20),
    }


def test_a_prediction_launched_after_the_generation_ended_is_canceled_at_once() -> None:
    gen = generation(status="canceled", work=None, launch_attempted_at=NOW)
    assert gen.launched("p1", "starting", NOW, 20)
    assert (gen.work, gen.work_after, gen.work_attempts) == ("cancel", NOW, 0)
    assert gen.pull_events() == []


def test_the_provider_starting_and_processing_move_the_generation_forward() -> None:
    gen = at_provider("queued")
    assert gen.apply_provider_status("processing", now=NOW, quiet_s=20)
    assert gen.pull_changes() == {
        "provider_seen_at": NOW,
        "provider_status": "processing",
        "work_after": NOW + timedelta(seconds=20),
        "started_at": NOW,
        "status": "running",
    }
    assert gen.pull_events() == []


def test_a_stale_provider_status_is_recorded_but_moves_nothing() -> None:
    gen = at_provider("running", started_at=NOW)
    later = NOW + timedelta(seconds=5)
    assert not gen.apply_provider_status("starting", now=later, quiet_s=20)
    assert gen.status == "running"
    assert gen.pull_changes() == {
        "provider_seen_at": later,
        "provider_status": "starting",
        "work_after": later + timedelta(seconds=20),
    }


def test_a_provider_success_schedules_the_ingest_of_what_was_asked_for() -> None:
    gen = at_provider("queued")
    urls = ["https://r.test/0.webp", "https://r.test/1.webp", "https://r.test/2.webp"]
    assert gen.apply_provider_status("succeeded", outputs=urls, now=NOW, quiet_s=20)
    assert gen.status == "running" and gen.started_at == NOW
    assert (gen.work, gen.work_after, gen.work_attempts) == ("ingest", NOW, 0)
    assert gen.output_urls == urls[:2]
    assert gen.pull_events() == []


def test_a_repeated_provider_success_changes_nothing_more() -> None:
    gen = at_provider("queued")
    urls = ["https://r.test/0.webp", "https://r.test/1.webp"]
    gen.apply_provider_status("succeeded", outputs=urls, now=NOW, quiet_s=20)
    gen.pull_changes()
    assert not gen.apply_provider_status("succeeded", outputs=urls, now=NOW, quiet_s=20)
    assert gen.work == "ingest"


def test_a_provider_success_never_replaces_a_pending_cancel() -> None:
    gen = at_provider("running", work="cancel")
    gen.apply_provider_status("succeeded", outputs=["https://r.test/0.webp"], now=NOW, quiet_s=20)
    assert gen.work == "cancel"


def test_a_provider_failure_fails_the_generation_with_its_error() -> None:
    gen = at_provider()
    assert gen.apply_provider_status("failed", error="NSFW content detected", now=NOW, quiet_s=20)
    assert (gen.status, gen.failure_reason, gen.failure_message) == (
        "failed",
        "blocked",
        "NSFW content detected",
    )
    # The prediction ended at the provider: nothing to cancel there.
    assert (gen.work, gen.provider_status) == (None, "failed")
    (failed,) = gen.pull_events()
    assert isinstance(failed, GenerationFailedV1) and failed.reason == "blocked"


def test_a_provider_failure_without_an_error_says_the_model_failed() -> None:
    gen = at_provider()
    gen.apply_provider_status("failed", now=NOW, quiet_s=20)
    assert (gen.failure_reason, gen.failure_message) == (
        "provider_failed",
        "the image model failed",
    )


def test_a_cancel_at_the_provider_cancels_the_generation() -> None:
    gen = at_provider()
    assert gen.apply_provider_status("canceled", now=NOW, quiet_s=20)
    assert (gen.status, gen.failure_reason, gen.work) == ("canceled", "provider_canceled", None)
    (canceled,) = gen.pull_events()
    assert isinstance(canceled, GenerationCanceledV1)


@pytest.mark.parametrize("status", ["succeeded", "failed", "canceled"])
@pytest.mark.parametrize("provider", ["starting", "processing", "succeeded", "failed", "canceled"])
def test_the_provider_never_reopens_a_finished_generation(status: str, provider: str) -> None:
    gen = at_provider(status, work=None, finished_at=NOW, delivered=1)
    assert not gen.apply_provider_status(provider, outputs=["https://r.test/0"], now=NOW, quiet_s=1)
    assert gen.status == status
    assert set(gen.pull_changes()) == {"provider_seen_at", "provider_status"}
    assert gen.pull_events() == []


def test_an_unknown_provider_status_is_only_recorded() -> None:
    gen = at_provider()
    assert not gen.apply_provider_status("booting", now=NOW, quiet_s=20)
    assert gen.status == "running"


def test_polling_stops_once_the_generation_ended() -> None:
    ended = at_provider("failed")
    assert ended.stop_polling()
    assert ended.pull_changes() == {"work": None, "work_after": None}
    running = at_provider()
    assert not running.stop_polling()
    assert unchanged(running)


def test_the_cancel_step_done_records_the_prediction_canceled() -> None:
    gen = at_provider("canceled", work="cancel")
    assert gen.canceled_at_provider()
    assert gen.pull_changes() == {"work": None, "work_after": None, "provider_status": "canceled"}
    other = at_provider("canceled", work=None)
    assert not other.canceled_at_provider()


def test_stored_images_are_counted_as_delivered() -> None:
    gen = at_provider(work="ingest")
    assert gen.images_stored(1)
    assert gen.pull_changes() == {"delivered": 1}
    assert not gen.images_stored(1)


@given(st.lists(st.sampled_from(sorted(PROVIDER_STATUS)), max_size=8))
def test_any_sequence_of_provider_statuses_raises_at_most_one_outcome(
    statuses: list[str],
) -> None:
    gen = at_provider("queued")
    for status in statuses:
        gen.apply_provider_status(status, outputs=["https://r.test/0"], now=NOW, quiet_s=1)
    gen.succeed(1, NOW)
    outcomes = [
        e
        for e in gen.pull_events()
        if isinstance(e, GenerationSucceededV1 | GenerationFailedV1 | GenerationCanceledV1)
    ]
    assert len(outcomes) == 1
    assert gen.state.terminal
