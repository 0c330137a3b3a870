"""Request and response bodies of the operator console (routes/admin.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from visiona.admin.v1 import admin_pb2
from visiona.gateway.edge.inputs import RequestBody
from visiona.gateway.schemas import FromMessage, from_message
from visiona.gateway.schemas.billing import Balance, LedgerEntry

# Paid jobs an operator can act on, by the service that runs them; ``generation_ingest`` lists
# the generations whose outputs are being copied into our storage (they are generations; the
# metrics' ``ingest`` kind is training's photos, a different thing).
JobKind = Literal["training", "generation"]
ListedKind = Literal["training", "generation", "generation_ingest"]
REASON_MAX = 500


class Reason(RequestBody):
    """Why the operator acts: required, kept in the audit log of the user acted on."""

    reason: str | None = Field(
        default=None,
        max_length=REASON_MAX,
        description="Why (required; 422 `reason_required` without one). Kept in the audit log.",
    )


class CreditChange(Reason):
    amount: int = Field(ge=1, le=1_000_000, description="Credits to grant or take back")


class AdminJob(FromMessage):
    """A job as an operator sees it: state and background work, never its content."""

    kind: JobKind
    id: str
    user_id: str
    status: str = Field(description="The service's status (e.g. `queued`, `training`)")
    work: str | None = Field(description="The next background step, if any")
    work_after: datetime | None
    work_attempts: int
    leased: bool = Field(description="A worker is running the step now")
    provider_status: str | None
    provider_seen_at: datetime | None
    failure_reason: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, kind: JobKind, message: admin_pb2.Job) -> AdminJob:
        return from_message(cls, message, kind=kind)


class AdminJobPage(BaseModel):
    jobs: list[AdminJob]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page")


class FailedJob(BaseModel):
    job: AdminJob
    failed: bool = Field(
        description="False when the job had already ended: nothing changed, nothing released"
    )


class CreditAdjustment(BaseModel):
    applied: bool = Field(description="False when this Idempotency-Key was applied before")
    balance: int
    available: int


# The processes whose plumbing an operator sees: the back services and the gateway itself.
Service = Literal["gateway", "training", "generation", "billing", "prompts"]
SERVICES: tuple[Service, ...] = ("gateway", "training", "generation", "billing", "prompts")


class DeadLetter(FromMessage):
    """A dead-lettered event: what names it and why it died, never its payload."""

    event_id: str
    routing_key: str
    reason: str | None = Field(description="`delivery_limit`, `rejected`, `expired`, `maxlen`")
    deaths: int = Field(description="Times it was dead-lettered")
    died_at: datetime | None


class ConsumerDeadLetters(FromMessage):
    consumer: str
    count: int = Field(description="Dead letters waiting")
    letters: list[DeadLetter] = Field(description="The oldest of them, up to `limit`")


class ServiceDeadLetters(BaseModel):
    service: Service
    consumers: list[ConsumerDeadLetters]


class DeadLetters(BaseModel):
    services: list[ServiceDeadLetters]


class ServiceBacklog(BaseModel):
    service: Service
    unpublished: int = Field(description="Events written and not yet published")
    oldest_age_s: float = Field(description="Age of the oldest of them, in seconds (0: none)")


class OutboxBacklog(BaseModel):
    services: list[ServiceBacklog]


class UserLookup(BaseModel):
    """What an operator may see of a user: credits and their movements (payments among
    them), and their models' and generations' states. Never a photo, an image, a prompt or a
    URL: consent to show those is not recorded anywhere yet (ADR 0015)."""

    user_id: str
    credits: Balance
    ledger: list[LedgerEntry] = Field(description="Newest first")
    ledger_next_cursor: str | None = Field(description="Pass as `ledger_cursor`")
    models: list[AdminJob] = Field(description="Trainings, newest first")
    models_next_cursor: str | None = Field(description="Pass as `models_cursor`")
    generations: list[AdminJob] = Field(description="Newest first")
    generations_next_cursor: str | None = Field(description="Pass as `generations_cursor`")
