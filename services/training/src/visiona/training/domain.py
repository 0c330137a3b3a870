"""Training rules, free of I/O: the model's state machine, presets, trigger words, photo counts.

A model moves ``awaiting_credits → preparing → queued → training → succeeded | failed |
canceled``. Updates arrive from several places (billing's answer, the provider's webhooks,
the reconciler) more than once and out of order, so a transition is applied only if it moves
the model forward: stale or repeated updates are ignored, and a finished model never changes
but in one way: a succeeded model whose trained version the provider no longer has (it
answers 404 for it) becomes ``unavailable``, for good (it cannot generate; train it again).
"""

from __future__ import annotations

import enum
import re
import secrets
from dataclasses import dataclass

from visiona.kit.errors import InvalidArgument

MIN_PHOTOS = 10
MAX_PHOTOS = 30


class ModelStatus(enum.StrEnum):
    AWAITING_CREDITS = "awaiting_credits"
    PREPARING = "preparing"
    QUEUED = "queued"
    TRAINING = "training"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    # Succeeded, then its trained version was gone at the provider: it cannot generate.
    UNAVAILABLE = "unavailable"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL

    @property
    def rank(self) -> int:
        return _RANK[self]


TERMINAL = frozenset(
    {ModelStatus.SUCCEEDED, ModelStatus.FAILED, ModelStatus.CANCELED, ModelStatus.UNAVAILABLE}
)
_RANK = {
    ModelStatus.AWAITING_CREDITS: 0,
    ModelStatus.PREPARING: 1,
    ModelStatus.QUEUED: 2,
    ModelStatus.TRAINING: 3,
    ModelStatus.SUCCEEDED: 4,
    ModelStatus.FAILED: 4,
    ModelStatus.CANCELED: 4,
    ModelStatus.UNAVAILABLE: 5,
}
# Ended, and not a model a user keeps (nor one their plan's limits count).
NOT_KEPT = frozenset({ModelStatus.FAILED, ModelStatus.CANCELED, ModelStatus.UNAVAILABLE})


def can_advance(current: ModelStatus, new: ModelStatus) -> bool:
    """True when ``new`` moves a model in ``current`` forward (never out of a final state,
    never back, never to the same state again)."""
    return not current.terminal and new.rank > current.rank


def can_become_unavailable(current: ModelStatus) -> bool:
    """Only a ready model loses its provider version; anything else has none to lose."""
    return current is ModelStatus.SUCCEEDED


# The provider's training status → ours. ``succeeded`` is not final for us until the weights
# are copied into our storage, which the service does before it records SUCCEEDED.
PROVIDER_STATUS = {
    "starting": ModelStatus.QUEUED,
    "processing": ModelStatus.TRAINING,
    "succeeded": ModelStatus.SUCCEEDED,
    "failed": ModelStatus.FAILED,
    "canceled": ModelStatus.CANCELED,
}


@dataclass(frozen=True)
class Preset:
    """Trainer inputs (ostris/flux-dev-lora-trainer: steps 3-6000, rank, learning rate)."""

    name: str
    steps: int
    lora_rank: int
    learning_rate: float


PRESETS = {
    p.name: p
    for p in (
        Preset("fast", steps=500, lora_rank=16, learning_rate=4e-4),
        Preset("balanced", steps=1000, lora_rank=16, learning_rate=4e-4),
        Preset("quality", steps=2000, lora_rank=32, learning_rate=2e-4),
    )
}
DEFAULT_PRESET = "balanced"


def preset(name: str | None) -> Preset:
    chosen = PRESETS.get(name or DEFAULT_PRESET)
    if chosen is None:
        raise InvalidArgument(
            f"unknown preset {name!r}; one of {', '.join(PRESETS)}", code="preset_unknown"
        )
    return chosen


_TRIGGER = re.compile(r"^[A-Za-z][A-Za-z0-9_]{2,31}$")
# Consonant-heavy letters make tokens that occur in no caption or prompt by accident.
_TRIGGER_LETTERS = "bcdfghjklmnpqrstvwxz"


def trigger_word(given: str | None) -> str:
    """The user's trigger word, checked, or a fresh unique one (``vsn`` + 6 letters)."""
    if given is None or not given.strip():
        return "vsn" + "".join(secrets.choice(_TRIGGER_LETTERS) for _ in range(6))
    word = given.strip()
    if not _TRIGGER.match(word):
        raise InvalidArgument(
            "trigger_word must be 3-32 letters, digits or _, starting with a letter",
            code="trigger_word_invalid",
        )
    return word


def check_photo_count(count: int) -> None:
    if not MIN_PHOTOS <= count <= MAX_PHOTOS:
        raise InvalidArgument(
            f"a model needs {MIN_PHOTOS}-{MAX_PHOTOS} accepted photos, got {count}",
            code="photo_count_invalid",
        )
