"""Training rules: monotonic state machine, presets, trigger words, photo counts."""

from __future__ import annotations

import itertools

import pytest

from visiona.kit.errors import InvalidArgument
from visiona.training.domain.model import (
    PROVIDER_STATUS,
    TERMINAL,
    ModelStatus,
    can_advance,
    can_become_unavailable,
    check_photo_count,
    preset,
    trigger_word,
)

FLOW = [
    ModelStatus.AWAITING_CREDITS,
    ModelStatus.PREPARING,
    ModelStatus.QUEUED,
    ModelStatus.TRAINING,
    ModelStatus.SUCCEEDED,
]


def test_the_happy_path_only_moves_forward() -> None:
    for earlier, later in itertools.combinations(FLOW, 2):
        assert can_advance(earlier, later)
        assert not can_advance(later, earlier)


def test_repeated_updates_and_anything_after_the_end_are_ignored() -> None:
    for status in ModelStatus:
        assert not can_advance(status, status)
    for final, new in itertools.product(TERMINAL, ModelStatus):
        assert not can_advance(final, new)


def test_a_job_can_fail_or_be_canceled_from_any_unfinished_state() -> None:
    for status in FLOW[:-1]:
        assert can_advance(status, ModelStatus.FAILED)
        assert can_advance(status, ModelStatus.CANCELED)


def test_only_a_ready_model_becomes_unavailable_and_that_is_final() -> None:
    assert [s for s in ModelStatus if can_become_unavailable(s)] == [ModelStatus.SUCCEEDED]
    assert ModelStatus.UNAVAILABLE.terminal
    assert not any(can_advance(ModelStatus.UNAVAILABLE, new) for new in ModelStatus)
    # No provider status leads there: only the provider's 404 for the version does.
    assert ModelStatus.UNAVAILABLE not in PROVIDER_STATUS.values()


def test_provider_statuses_map_onto_ours() -> None:
    assert PROVIDER_STATUS["starting"] is ModelStatus.QUEUED
    assert PROVIDER_STATUS["processing"] is ModelStatus.TRAINING
    # A late "processing" webhook after "succeeded" changes nothing.
    assert not can_advance(ModelStatus.SUCCEEDED, PROVIDER_STATUS["processing"])


def test_presets_stay_within_the_trainers_limits() -> None:
    assert preset(None).name == "balanced"
    for name in ("fast", "balanced", "quality"):
        p = preset(name)
        assert 3 <= p.steps <= 6000 and p.lora_rank in (16, 32) and 0 < p.learning_rate < 1e-2
    with pytest.raises(InvalidArgument) as info:
        preset("turbo")
    assert info.value.code == "preset_unknown"


def test_trigger_words_are_unique_unless_given_and_given_ones_are_checked() -> None:
    made = {trigger_word(None) for _ in range(200)}
    assert len(made) == 200 and all(w.startswith("vsn") and w.isalpha() for w in made)
    assert trigger_word("  alice_1 ") == "alice_1"
    for bad in ("a", "1abc", "has space", "x" * 33, "émile"):
        with pytest.raises(InvalidArgument) as info:
            trigger_word(bad)
        assert info.value.code == "trigger_word_invalid"


@pytest.mark.parametrize(("count", "ok"), [(9, False), (10, True), (30, True), (31, False)])
def test_a_model_needs_10_to_30_photos(count: int, ok: bool) -> None:
    if ok:
        check_photo_count(count)
    else:
        with pytest.raises(InvalidArgument):
            check_photo_count(count)
