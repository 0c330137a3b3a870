"""The event catalogue: every integration event, versioned, frozen, with its routing key.

Routing keys follow ``<service>.<aggregate>.<past_verb>.v<n>``. Within a version, changes are
additive only; a breaking change is a new class with ``v<n+1>``. Events carry ids, not rows.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

CATALOGUE: dict[str, type[Event]] = {}


def _now() -> datetime:
    return datetime.now(UTC)


class Event(BaseModel):
    """Base of every integration event. Subclasses set ``routing_key``."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    routing_key: ClassVar[str]

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    occurred_at: datetime = Field(default_factory=_now)
    user_id: str | None = None

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        key = cls.__dict__.get("routing_key")
        if key is None:
            return
        parts = key.split(".")
        if len(parts) != 4 or not parts[3].startswith("v") or not parts[3][1:].isdigit():
            raise ValueError(f"routing key {key!r} is not <service>.<aggregate>.<verb>.v<n>")
        if key in CATALOGUE:
            raise ValueError(f"routing key {key!r} is defined twice")
        CATALOGUE[key] = cls


class UnknownEvent(LookupError):
    """A message whose routing key the catalogue does not know."""


def decode_event(routing_key: str, body: bytes) -> Event:
    try:
        cls = CATALOGUE[routing_key]
    except KeyError:
        raise UnknownEvent(routing_key) from None
    return cls.model_validate_json(body)


# --- prompts -------------------------------------------------------------------------------


class PromptEnhancementCreatedV1(Event):
    """The prompts service stored an LLM enhancement of a user's prompt.

    Billing records it as usage (tokens consumed by the user's request).
    """

    routing_key: ClassVar[str] = "prompts.enhancement.created.v1"

    user_id: str
    enhancement_id: uuid.UUID
    model: str
    input_tokens: int
    output_tokens: int


# --- the credit-hold saga ------------------------------------------------------------------
#
# A job service (training, generation) saves its job as awaiting credits and emits
# ``*.requested``. Billing places a hold of the job's price (configuration) under the
# idempotency key ``<job_kind>:<job_id>`` and answers ``billing.credits.reserved`` or
# ``billing.credits.rejected``. The job then runs; its outcome event makes billing capture what
# was delivered and release the rest. A hold with no outcome before it expires is released and
# ``billing.hold.expired`` tells the job service. Every step is idempotent: replays of any of
# these events change nothing.

JobKind = Literal["training", "generation"]


class TrainingRequestedV1(Event):
    """Training asks billing to reserve the price of one training of ``preset``."""

    routing_key: ClassVar[str] = "training.training.requested.v1"

    user_id: str
    training_id: uuid.UUID
    model_id: uuid.UUID
    preset: str = "default"


class TrainingProgressedV1(Event):
    """A training moved on (status or progress), for live views; not a source of truth."""

    routing_key: ClassVar[str] = "training.model.progressed.v1"

    user_id: str
    model_id: uuid.UUID
    training_id: uuid.UUID
    status: str
    progress: float = 0.0


class ModelReadyV1(Event):
    """A training succeeded: the model's weights are in our storage. Billing captures the hold."""

    routing_key: ClassVar[str] = "training.model.ready.v1"

    user_id: str
    model_id: uuid.UUID
    training_id: uuid.UUID
    version: str


class ModelUnavailableV1(Event):
    """A ready model can no longer generate: the provider no longer has its trained version
    (``reason`` ``provider_version_missing``). Nothing was charged for it since."""

    routing_key: ClassVar[str] = "training.model.unavailable.v1"

    user_id: str
    model_id: uuid.UUID
    training_id: uuid.UUID
    reason: str


class TrainingFailedV1(Event):
    """A training ended without a model. Billing releases the whole hold."""

    routing_key: ClassVar[str] = "training.training.failed.v1"

    user_id: str
    training_id: uuid.UUID
    model_id: uuid.UUID
    reason: str


class TrainingCanceledV1(Event):
    """The user (or the system) canceled a training. Billing releases the whole hold."""

    routing_key: ClassVar[str] = "training.training.canceled.v1"

    user_id: str
    training_id: uuid.UUID
    model_id: uuid.UUID
    reason: str = "canceled"


class GenerationRequestedV1(Event):
    """Generation asks billing to reserve the price of ``num_outputs`` images."""

    routing_key: ClassVar[str] = "generation.generation.requested.v1"

    user_id: str
    generation_id: uuid.UUID
    model_id: uuid.UUID
    num_outputs: int = Field(ge=1)


class ModelVersionMissingV1(Event):
    """Generation found a model's trained version gone at the provider (a 404 for it when a
    prediction was refused); training checks it and marks the model unavailable."""

    routing_key: ClassVar[str] = "generation.model.version_missing.v1"

    user_id: str
    model_id: uuid.UUID
    generation_id: uuid.UUID


class GenerationSucceededV1(Event):
    """A generation ended with ``delivered`` images stored (of ``requested``).

    Billing captures ``delivered`` images' price and releases the rest.
    """

    routing_key: ClassVar[str] = "generation.generation.succeeded.v1"

    user_id: str
    generation_id: uuid.UUID
    requested: int = Field(ge=1)
    delivered: int = Field(ge=0)


class GenerationFailedV1(Event):
    """A generation failed; images already stored (``delivered``) are still paid for."""

    routing_key: ClassVar[str] = "generation.generation.failed.v1"

    user_id: str
    generation_id: uuid.UUID
    reason: str
    delivered: int = Field(default=0, ge=0)


class GenerationCanceledV1(Event):
    """A generation was canceled; images already stored (``delivered``) are still paid for."""

    routing_key: ClassVar[str] = "generation.generation.canceled.v1"

    user_id: str
    generation_id: uuid.UUID
    reason: str = "canceled"
    delivered: int = Field(default=0, ge=0)


class CreditsReservedV1(Event):
    """Billing holds ``credits`` for the job until an outcome arrives or ``expires_at``."""

    routing_key: ClassVar[str] = "billing.credits.reserved.v1"

    user_id: str
    job_kind: JobKind
    job_id: uuid.UUID
    hold_id: uuid.UUID
    credits: int
    expires_at: datetime


class CreditsRejectedV1(Event):
    """Billing could not hold the job's price; the job must not run.

    ``reason``: ``insufficient_credits`` (``required`` > ``available``).
    """

    routing_key: ClassVar[str] = "billing.credits.rejected.v1"

    user_id: str
    job_kind: JobKind
    job_id: uuid.UUID
    reason: str
    required: int
    available: int


class HoldExpiredV1(Event):
    """No outcome arrived before the hold expired: its credits went back to the user.

    The job service should stop the job (it is no longer paid for).
    """

    routing_key: ClassVar[str] = "billing.hold.expired.v1"

    user_id: str
    job_kind: JobKind
    job_id: uuid.UUID
    hold_id: uuid.UUID
    credits: int


class CreditsChangedV1(Event):
    """The user's balance or holds changed (for live views; not a source of truth)."""

    routing_key: ClassVar[str] = "billing.credits.changed.v1"

    user_id: str
    balance: int
    held: int
    available: int
    cause: str


class PlanChangedV1(Event):
    """The user's plan or its status changed; entitlements follow it."""

    routing_key: ClassVar[str] = "billing.plan.changed.v1"

    user_id: str
    plan_id: str | None
    status: str


class StripeEventReceivedV1(Event):
    """Billing-internal: a verified Stripe event was stored and waits to be applied."""

    routing_key: ClassVar[str] = "billing.stripe_event.received.v1"

    stripe_event_id: str
    type: str


# --- the user's own data: erasure and export -------------------------------------------------
#
# The gateway runs both sagas; every service that holds user data takes part.
#
# Erasure (DELETE /v1/me, or Clerk's user.deleted) goes in rounds. For each round the gateway
# emits ``gateway.account.erasure_requested.v1``; each participant removes everything of the
# user it holds (rows, S3 objects, provider-side artifacts, its own published outbox rows that
# name the user) and then answers with its ``<service>.account.purged.v1`` for that round,
# counting what it removed. A round is repeated (a new event id, same round) while answers are
# missing, so every handler must be idempotent. The saga ends with the first round in which
# nobody removed anything: whatever an in-flight request created after an earlier round was
# caught by a later one.
#
# Export (POST /v1/me/export): each participant writes its part under
# ``exports/<export_id>/<service>/`` in the bucket (``records/<table>.json`` with every row of
# the user, and the user's files under ``files/``; see visiona.kit.erasure.ExportPart) and
# answers ``<service>.account.exported.v1``.
# The gateway zips the parts into one archive behind an expiring presigned link.

ERASURE_PARTICIPANTS = ("training", "generation", "billing", "prompts")


class ErasureRequestedV1(Event):
    """Remove everything of ``user_id`` (round ``round`` of erasure ``deletion_id``)."""

    routing_key: ClassVar[str] = "gateway.account.erasure_requested.v1"

    user_id: str
    deletion_id: uuid.UUID
    round: int = Field(ge=1)


class AccountPurged(Event):
    """A participant holds nothing of the user any more (``removed``: what this round took:
    rows, objects and provider artifacts together; 0 means there was nothing left).

    It names no user (``user_id`` stays None): this event's own outbox row outlives the purge.
    """

    service: ClassVar[str]

    deletion_id: uuid.UUID
    round: int = Field(ge=1)
    removed: int = Field(ge=0)


class TrainingAccountPurgedV1(AccountPurged):
    routing_key: ClassVar[str] = "training.account.purged.v1"
    service: ClassVar[str] = "training"


class GenerationAccountPurgedV1(AccountPurged):
    routing_key: ClassVar[str] = "generation.account.purged.v1"
    service: ClassVar[str] = "generation"


class BillingAccountPurgedV1(AccountPurged):
    routing_key: ClassVar[str] = "billing.account.purged.v1"
    service: ClassVar[str] = "billing"


class PromptsAccountPurgedV1(AccountPurged):
    routing_key: ClassVar[str] = "prompts.account.purged.v1"
    service: ClassVar[str] = "prompts"


class ExportRequestedV1(Event):
    """Write every record and file of ``user_id`` under ``exports/<export_id>/<service>/``."""

    routing_key: ClassVar[str] = "gateway.export.requested.v1"

    user_id: str
    export_id: uuid.UUID


class AccountExported(Event):
    """A participant's part of an export is in the bucket under ``prefix``."""

    service: ClassVar[str]

    user_id: str
    export_id: uuid.UUID
    prefix: str
    objects: int = Field(ge=0)
    bytes: int = Field(ge=0)


class TrainingAccountExportedV1(AccountExported):
    routing_key: ClassVar[str] = "training.account.exported.v1"
    service: ClassVar[str] = "training"


class GenerationAccountExportedV1(AccountExported):
    routing_key: ClassVar[str] = "generation.account.exported.v1"
    service: ClassVar[str] = "generation"


class BillingAccountExportedV1(AccountExported):
    routing_key: ClassVar[str] = "billing.account.exported.v1"
    service: ClassVar[str] = "billing"


class PromptsAccountExportedV1(AccountExported):
    routing_key: ClassVar[str] = "prompts.account.exported.v1"
    service: ClassVar[str] = "prompts"


class ExportReadyV1(Event):
    """The user's export archive is ready to download (for live views)."""

    routing_key: ClassVar[str] = "gateway.export.ready.v1"

    user_id: str
    export_id: uuid.UUID


class DeletionProgressedV1(Event):
    """The user's account erasure moved on (for live views; ``status`` as in GET
    /v1/me/deletion)."""

    routing_key: ClassVar[str] = "gateway.account.deletion_progressed.v1"

    user_id: str
    deletion_id: uuid.UUID
    status: str
