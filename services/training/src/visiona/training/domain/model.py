"""The LoRA model aggregate, free of I/O: its record, state machine, and the events it raises.

A model moves ``awaiting_credits → preparing → queued → training → succeeded | failed |
canceled``. Updates arrive from several places (billing's answer, the provider's webhooks,
the reconciler) more than once and out of order, so a transition is applied only if it moves
the model forward: stale or repeated updates are ignored, and a finished model never changes
but in one way: a succeeded model whose trained version the provider no longer has (it
answers 404 for it) becomes ``unavailable``, for good (it cannot generate; train it again).

:class:`Model` is the row of ``models`` as a dataclass. Every transition is a method that
changes the model, records the columns it changed (:meth:`Model.pull_changes`) and the events
it raises (:meth:`Model.pull_events`), and says whether it changed anything; it reads no
clock (``now`` is passed in). The repository (visiona.training.repository.model) writes the
changes in one UPDATE and emits the events in the same unit of work. The row also carries the
background work's bookkeeping (``work``, ``work_after``, ``work_attempts``, ``lease_until``:
visiona.kit.jobs), which the transitions set where a state change hands the model a next step.
"""

from __future__ import annotations

import enum
import re
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from visiona.kit.aggregate import ProviderJob
from visiona.kit.errors import InvalidArgument
from visiona.kit.events import (
    ModelReadyV1,
    ModelUnavailableV1,
    TrainingCanceledV1,
    TrainingFailedV1,
    TrainingProgressedV1,
    TrainingRequestedV1,
)

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


_PERCENT = re.compile(r"(\d{1,3}(?:\.\d+)?)\s*%")
_STEPS = re.compile(r"\b(\d+)\s*/\s*(\d+)\b")


@dataclass(frozen=True)
class ProviderTraining:
    """What the provider says about a training (a webhook's payload or an API answer)."""

    id: str
    status: str
    destination: str | None = None
    version: str | None = None
    weights_url: str | None = None
    error: str | None = None
    logs: str = ""

    @classmethod
    def from_payload(cls, data: Mapping[str, Any]) -> ProviderTraining:
        output = data.get("output")
        version = weights = None
        if isinstance(output, Mapping):
            version = output.get("version")
            weights = output.get("weights")
        return cls(
            id=str(data["id"]),
            status=str(data["status"]),
            destination=data.get("destination"),
            version=str(version) if version else None,
            weights_url=str(weights) if weights else None,
            error=str(data["error"]) if data.get("error") else None,
            logs=str(data.get("logs") or ""),
        )

    @property
    def progress(self) -> float | None:
        """The trainer's last reported progress (``45%`` or ``450/1000`` in the logs), 0-1."""
        tail = self.logs[-2000:]
        percents = _PERCENT.findall(tail)
        if percents:
            return min(float(percents[-1]) / 100, 1.0)
        steps = [(int(a), int(b)) for a, b in _STEPS.findall(tail) if int(b) > 0]
        if steps:
            done, total = steps[-1]
            return min(done / total, 1.0)
        return None


PROVIDER_FINAL = frozenset({"succeeded", "failed", "canceled"})
UNAVAILABLE_REASON = "provider_version_missing"
# Steps that end the training's work at the provider or the model itself: a provider's
# success does not replace them with ``finalize``.
_ENDING_WORK = ("finalize", "purge", "cancel")


@dataclass
class Model(ProviderJob):
    """A user's LoRA model and its training (one row of ``models``: the columns every paid
    provider job has are ProviderJob's, a model's own follow)."""

    launch_status = ModelStatus.PREPARING.value

    name: str
    preset: str
    trigger_word: str
    training_id: uuid.UUID
    photo_ids: list[uuid.UUID]
    dataset_key: str | None
    provider_model: str | None
    provider_training_id: str | None
    weights_url: str | None
    weights_key: str | None
    version: str | None
    progress: float
    queued_at: datetime | None
    deleted_at: datetime | None
    # When the retention sweep deleted the dataset zip (visiona.training.jobs.retention).
    dataset_purged_at: datetime | None

    # -- what it is ------------------------------------------------------------------------------

    @property
    def state(self) -> ModelStatus:
        return ModelStatus(self.status)

    @property
    def provider_running(self) -> bool:
        """The provider may still be training (or about to): a cancel must reach it."""
        return bool(self.provider_training_id or self.launch_attempted_at) and (
            self.provider_status not in PROVIDER_FINAL
        )

    # -- events ----------------------------------------------------------------------------------

    @property
    def _ids(self) -> dict[str, Any]:
        """What every event of the model names: its user, the model and its training."""
        return {"user_id": self.user_id, "model_id": self.id, "training_id": self.training_id}

    def credits_request(self) -> TrainingRequestedV1:
        """The model's request to billing (asked again: a new event, the same training; billing
        holds once per training and answers a repeated request the same)."""
        return TrainingRequestedV1(**self._ids, preset=self.preset)

    def _progressed(self) -> None:
        """Tell live views (SSE) where a running training is."""
        self._raise(
            TrainingProgressedV1(
                **self._ids,
                status=self.status,
                progress=round(float(self.progress), 3),
            )
        )

    def _failed(self, reason: str) -> TrainingFailedV1:
        return TrainingFailedV1(**self._ids, reason=reason)

    def _canceled(self, reason: str) -> TrainingCanceledV1:
        return TrainingCanceledV1(**self._ids, reason=reason)

    # -- billing's credits (the saga's participant side; the rest is ProviderJob's) --------------

    def _launch_due(self) -> None:
        # Billing's hold moves the model to ``preparing``: live views show it.
        self._progressed()

    def hold_expired(self, now: datetime) -> bool:
        """The hold ran out: the training is no longer paid for and stops."""
        return self.fail("hold_expired", "the training ran past its paid time", now)

    # -- outcomes --------------------------------------------------------------------------------

    def _stop_work(self, now: datetime) -> dict[str, Any]:
        # A model being purged keeps its purge (which stops the provider's training itself).
        if self.work == "purge":
            return {}
        return super()._stop_work(now)

    def succeed(self, weights_key: str, verify_in_s: float, now: datetime) -> bool:
        """The weights are in our storage: the model is ready; its provider version is checked
        again every ``verify_in_s``."""
        if self.state.terminal or self.version is None:
            return False
        self._set(
            status=ModelStatus.SUCCEEDED.value,
            weights_key=weights_key,
            progress=1.0,
            finished_at=now,
            work="verify",
            work_after=now + timedelta(seconds=verify_in_s),
            work_attempts=0,
        )
        self._raise(ModelReadyV1(**self._ids, version=self.version))
        return True

    def become_unavailable(self, now: datetime) -> bool:
        """The provider answered 404 for the model's trained version: the model can no longer
        generate, and says so (``unavailable``, reason ``provider_version_missing``). Nothing of
        it is timed: ``now`` is taken like every transition's."""
        if not can_become_unavailable(self.state):
            return False
        self._set(
            status=ModelStatus.UNAVAILABLE.value,
            failure_reason=UNAVAILABLE_REASON,
            failure_message=(
                f"the provider no longer has this model's trained version "
                f"({self.version}); train the model again"
            )[:500],
            work=None,
            work_after=None,
        )
        self._raise(ModelUnavailableV1(**self._ids, reason=UNAVAILABLE_REASON))
        return True

    # -- the provider's word ---------------------------------------------------------------------

    def apply_provider_status(
        self, training: ProviderTraining, quiet_s: float, now: datetime
    ) -> bool:
        """Apply what the provider says about the model's training (webhook or poll). The
        provider's status and when it was heard are always recorded (and a due poll pushed
        back by ``quiet_s``); True when the model itself moved (state, progress, outcome)."""
        self._heard(training.status, quiet_s, now)
        target = PROVIDER_STATUS.get(training.status)
        if self.state.terminal or target is None:
            return False
        if target in (ModelStatus.QUEUED, ModelStatus.TRAINING):
            moved: dict[str, Any] = {}
            if can_advance(self.state, target):
                moved["status"] = target.value
                if target is ModelStatus.TRAINING and self.started_at is None:
                    moved["started_at"] = now
            progress = training.progress
            if progress is not None and progress > self.progress:
                moved["progress"] = min(progress, 0.99)
            if not moved:
                return False
            self._set(**moved)
            self._progressed()
            return True
        if target is ModelStatus.SUCCEEDED:
            if not (training.version and training.weights_url):
                return self.fail("provider_output_invalid", "the trainer returned no weights", now)
            if self.started_at is None:
                self._set(started_at=now)
            if can_advance(self.state, ModelStatus.TRAINING):
                self._set(status=ModelStatus.TRAINING.value)
            if self.work not in _ENDING_WORK:
                self._set(work="finalize", work_after=now, work_attempts=0)
            self._set(version=training.version, weights_url=training.weights_url, progress=0.99)
            return True
        if target is ModelStatus.FAILED:
            return self.fail("provider_failed", training.error or "the trainer failed", now)
        return self.cancel(now, "provider_canceled")

    def polled(self, training: ProviderTraining, quiet_s: float, now: datetime) -> bool:
        """The reconciler's answer from the provider: applied, and polling ends with the
        training."""
        moved = self.apply_provider_status(training, quiet_s, now)
        self.stop_polling()
        return moved

    # -- launch bookkeeping ----------------------------------------------------------------------

    def dataset_built(self, key: str) -> bool:
        self._set(dataset_key=key)
        return True

    def destination_created(self, destination: str) -> bool:
        self._set(provider_model=destination)
        return True

    def launched(self, training: ProviderTraining, quiet_s: float, now: datetime) -> bool:
        """The provider took the training: queued, and polled when it stays quiet. A model
        canceled while the create call was in flight stops what was just started."""
        self._set(
            provider_training_id=training.id, provider_status=training.status, provider_seen_at=now
        )
        moved = self.state is ModelStatus.PREPARING
        if moved:
            self._set(
                status=ModelStatus.QUEUED.value,
                queued_at=now,
                work="poll",
                work_after=now + timedelta(seconds=quiet_s),
            )
        elif self.state.terminal and self.work != "purge":
            self._set(work="cancel", work_after=now, work_attempts=0)
        if self.state is ModelStatus.QUEUED:
            self._progressed()
        return moved

    # -- the trained version ---------------------------------------------------------------------

    def check_version(self, now: datetime) -> bool:
        """Check the trained version at once (generation saw it refused). Only a ready model
        has one, and a model being deleted has nothing to check."""
        if self.state is not ModelStatus.SUCCEEDED or self.work not in (None, "verify"):
            return False
        self._set(work="verify", work_after=now, work_attempts=0)
        return True

    def version_checked(self, exists: bool, check_every_s: float, now: datetime) -> bool:
        """The provider's answer about the trained version: checked again later, or gone (the
        model becomes unavailable)."""
        if self.work != "verify" or self.state is not ModelStatus.SUCCEEDED:
            return False
        if not exists:
            return self.become_unavailable(now)
        self._set(work_after=now + timedelta(seconds=check_every_s))
        return True

    # -- the user's requests ---------------------------------------------------------------------

    @property
    def visible(self) -> bool:
        """Not deleted (a deleted model is gone from the API while its purge runs)."""
        return self.deleted_at is None

    def rename(self, name: str) -> bool:
        self._set(name=checked_name(name))
        return True

    def schedule_purge(self, reason: str, now: datetime) -> bool:
        """Hide the model and hand it to the background purge (the provider's training stopped,
        its versions and model deleted, our objects, the row: visiona.training.jobs.model). A
        training still running is canceled first, so billing releases its hold."""
        self.cancel(now, reason)
        self._set(deleted_at=now, work="purge", work_after=now, work_attempts=0)
        return True

    def dataset_purged(self, now: datetime) -> bool:
        """The retention sweep deleted the dataset zip."""
        self._set(dataset_purged_at=now)
        return True


def checked_name(name: str) -> str:
    name = (name or "").strip()
    if not 1 <= len(name) <= 80:
        raise InvalidArgument("name must be 1-80 characters", code="name_invalid")
    return name
