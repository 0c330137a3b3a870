"""The generation aggregate, free of I/O: states, what the provider says, and every
transition of a generation with the events it raises.

A generation moves ``awaiting_credits → queued → running → succeeded | failed | canceled``.
Billing's answer, webhooks, the reconciler and the user race; a change applies only if it moves
the generation forward, and a finished one never changes.

:class:`Generation` is the stored row (the repository loads it ``FOR UPDATE`` and saves it in
one unit of work): each transition changes its fields, records the columns it changed
(:meth:`Generation.pull_changes`) and the events it raises (:meth:`Generation.pull_events`),
and returns whether it changed anything. Its outcome event (``GenerationSucceededV1.delivered``
and the others) tells billing what to capture; billing releases the rest. Nothing here reads a
clock: the caller passes ``now``.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from visiona.kit.aggregate import ProviderJob
from visiona.kit.events import (
    GenerationCanceledV1,
    GenerationFailedV1,
    GenerationRequestedV1,
    GenerationSucceededV1,
    ModelVersionMissingV1,
)


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


# Why a generation failed, for what launching it found (the failure reasons the API shows).
MODEL_UNAVAILABLE = "model_unavailable"
OUTPUTS_UNAVAILABLE = "outputs_unavailable"
HOLD_EXPIRED = "hold_expired"
CANCELED_BY_USER = "canceled_by_user"
PROVIDER_CANCELED = "provider_canceled"


@dataclass
class Generation(ProviderJob):
    """One generation as stored: the dataclass's fields are the row's columns (and its
    equality; the columns every paid provider job has are ProviderJob's), the pending changes
    and events are not."""

    launch_status = GenerationStatus.QUEUED.value

    model_id: uuid.UUID
    version: str
    prompt: str
    final_prompt: str
    enhanced: bool
    degraded: bool
    enhancement_reason: str | None
    style_pack: str | None
    num_outputs: int
    aspect_ratio: str
    seed: int | None
    lora_scale: float
    output_format: str
    provider_prediction_id: str | None
    output_urls: list[str]
    delivered: int

    # -- reading -------------------------------------------------------------------------------

    @property
    def _ids(self) -> dict[str, Any]:
        """What every event of the generation names: its user and the generation."""
        return {"user_id": self.user_id, "generation_id": self.id}

    @property
    def state(self) -> GenerationStatus:
        return GenerationStatus(self.status)

    @property
    def provider_running(self) -> bool:
        return provider_running(
            self.provider_prediction_id, self.launch_attempted_at, self.provider_status
        )

    def credits_request(self) -> GenerationRequestedV1:
        """The generation's request to billing (billing holds once per generation and answers
        a repeated request the same)."""
        return GenerationRequestedV1(
            **self._ids, model_id=self.model_id, num_outputs=self.num_outputs
        )

    # -- billing's answers (the rest, and failing or canceling, are ProviderJob's) -------------

    def hold_expired(self, now: datetime) -> bool:
        """The generation outlived its hold."""
        return self.fail(HOLD_EXPIRED, "the generation ran past its paid time", now)

    # -- the outcomes --------------------------------------------------------------------------

    def succeed(self, delivered: int, now: datetime) -> bool:
        """Every output that could be stored is: succeeded with ``delivered`` images (billing
        captures those), or failed when none could be (billing releases everything)."""
        if self.state.terminal:
            return False
        if outcome_of_ingest(delivered) is GenerationStatus.FAILED:
            self._set(delivered=0)
            return self.fail(OUTPUTS_UNAVAILABLE, "no image could be copied from the provider", now)
        self._set(
            status=GenerationStatus.SUCCEEDED.value,
            delivered=delivered,
            finished_at=now,
            work=None,
            work_after=None,
        )
        self._raise(
            GenerationSucceededV1(**self._ids, requested=self.num_outputs, delivered=delivered)
        )
        return True

    def model_version_missing(self, now: datetime) -> bool:
        """The provider no longer has the model's version: the generation fails, and training
        is told (it marks the model unavailable) whatever became of the generation."""
        failed = self.fail(
            MODEL_UNAVAILABLE,
            "the model's trained version is no longer available at the provider; "
            "train the model again",
            now,
        )
        self._raise(ModelVersionMissingV1(**self._ids, model_id=self.model_id))
        return failed

    def _failed(self, reason: str) -> GenerationFailedV1:
        return GenerationFailedV1(**self._ids, reason=reason, delivered=self.delivered)

    def _canceled(self, reason: str) -> GenerationCanceledV1:
        return GenerationCanceledV1(**self._ids, reason=reason, delivered=self.delivered)

    # -- the provider --------------------------------------------------------------------------

    def launched(
        self, prediction_id: str, provider_status: str, now: datetime, quiet_s: float
    ) -> bool:
        """The prediction started: polled if no news comes for ``quiet_s``, or canceled at
        once when the generation ended meanwhile."""
        self._set(
            provider_prediction_id=prediction_id,
            provider_status=provider_status,
            provider_seen_at=now,
        )
        if not self.state.terminal:
            self._set(work="poll", work_after=now + timedelta(seconds=quiet_s))
        else:
            self._set(work="cancel", work_after=now, work_attempts=0)
        return True

    def apply_provider_status(
        self,
        status: str,
        *,
        outputs: Sequence[str] = (),
        error: str | None = None,
        now: datetime,
        quiet_s: float,
    ) -> bool:
        """What the provider says of the prediction (webhook or poll). Its status and when it
        was heard are always recorded (a poll waits ``quiet_s`` again); True when the
        generation itself moved (a status, outputs to ingest, an outcome), False for a stale or
        repeated update."""
        self._heard(status, quiet_s, now)
        target = PROVIDER_STATUS.get(status)
        if self.state.terminal or target is None:
            return False
        if target in (GenerationStatus.QUEUED, GenerationStatus.RUNNING):
            if not can_advance(self.state, target):
                return False
            if target is GenerationStatus.RUNNING and self.started_at is None:
                self._set(started_at=now)
            self._set(status=target.value)
            return True
        if target is GenerationStatus.SUCCEEDED:
            # Final for us only once every output is in our storage: the ingest step's.
            changed = False
            if self.started_at is None:
                self._set(started_at=now)
                changed = True
            if can_advance(self.state, GenerationStatus.RUNNING):
                self._set(status=GenerationStatus.RUNNING.value)
                changed = True
            if self.work not in ("ingest", "cancel"):
                self._set(work="ingest", work_after=now, work_attempts=0)
                changed = True
            urls = outputs_to_ingest(list(outputs), self.num_outputs)
            changed = changed or urls != self.output_urls
            self._set(output_urls=urls)
            return changed
        if target is GenerationStatus.FAILED:
            return self.fail(provider_failure_reason(error), error or "the image model failed", now)
        return self.cancel(now, PROVIDER_CANCELED)

    # -- the outputs ---------------------------------------------------------------------------

    def images_stored(self, delivered: int) -> bool:
        """``delivered`` outputs are in our storage now."""
        if delivered == self.delivered:
            return False
        self._set(delivered=delivered)
        return True
