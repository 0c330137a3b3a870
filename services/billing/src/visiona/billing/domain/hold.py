"""A credit hold: a job's credits reserved until its outcome (billing's side of the credits
saga, contract in ``visiona.kit.events``).

A hold is keyed by its job (``<job_kind>:<job_id>``): a job that asks again (its reconciler, a
redelivery) places it once and is answered as the hold stands. Its states (``holds.status``,
moved by ``place_hold`` and ``settle_hold`` of migration 0002, :data:`TRANSITIONS`):

- requested → ``open``: the price (unit price * units) was available and is now held;
- requested → ``rejected``: it was not; final, and asked again it is rejected again;
- ``open`` → ``settled``: the job's outcome; the price of the ``delivered`` units
  (amount * delivered / units) is captured, the rest released;
- ``open`` → ``expired``: no outcome within the hold's lifetime; all of it released (the
  sweeper), and the job is told;
- ``expired`` → ``settled``: an outcome after expiry still captures what was delivered, from
  the available credits (never below zero; the shortfall is recorded on the entry).

``settled`` is final: a late duplicate of the outcome or of the request changes nothing and
gets no answer.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from visiona.billing.domain.catalog import Catalog
from visiona.billing.domain.ledger import Balance, credits_changed
from visiona.kit.events import (
    CreditsRejectedV1,
    CreditsReservedV1,
    Event,
    HoldExpiredV1,
    JobKind,
)


class HoldStatus(StrEnum):
    OPEN = "open"
    REJECTED = "rejected"
    SETTLED = "settled"
    EXPIRED = "expired"


# Where each status may go; None is a hold not placed yet.
TRANSITIONS: Mapping[HoldStatus | None, frozenset[HoldStatus]] = {
    None: frozenset({HoldStatus.OPEN, HoldStatus.REJECTED}),
    HoldStatus.OPEN: frozenset({HoldStatus.SETTLED, HoldStatus.EXPIRED}),
    HoldStatus.EXPIRED: frozenset({HoldStatus.SETTLED}),
    HoldStatus.REJECTED: frozenset(),
    HoldStatus.SETTLED: frozenset(),
}


def can_become(current: HoldStatus | None, new: HoldStatus) -> bool:
    return new in TRANSITIONS[current]


def hold_key(job_kind: str, job_id: object) -> str:
    return f"{job_kind}:{job_id}"


@dataclass(frozen=True)
class HoldTerms:
    amount: int
    ttl: timedelta


def hold_terms(catalog: Catalog, job_kind: JobKind, units: int) -> HoldTerms:
    """What a job of ``units`` (images; 1 for a training) holds, and for how long."""
    unit_price = (
        catalog.prices.training if job_kind == "training" else catalog.prices.generation_image
    )
    return HoldTerms(unit_price * units, timedelta(seconds=getattr(catalog.hold_ttl_s, job_kind)))


@dataclass(frozen=True)
class HoldResult:
    """``place_hold``'s answer: the hold as it stands after the request."""

    hold_id: uuid.UUID
    status: str  # open | rejected | settled | expired
    amount: int
    balance: Balance
    expires_at: datetime
    created: bool


@dataclass(frozen=True)
class SettleResult:
    """``settle_hold``'s answer; ``erased`` when the user's account is gone."""

    status: str  # settled | expired | rejected | unknown | erased
    captured: int
    released: int
    balance: Balance | None
    changed: bool


@dataclass(frozen=True)
class DueHold:
    """An open hold past its expiry, for the sweeper."""

    id: uuid.UUID
    user_id: str
    key: str
    job_kind: str
    job_id: str
    amount: int


def answer_to_request(
    result: HoldResult, *, user_id: str, job_kind: JobKind, job_id: object
) -> list[Event]:
    """The events that answer a job's request for credits, by what its hold is now."""
    if result.status == HoldStatus.OPEN:
        events: list[Event] = [
            CreditsReservedV1(
                user_id=user_id,
                job_kind=job_kind,
                job_id=job_id,  # type: ignore[arg-type]
                hold_id=result.hold_id,
                credits=result.amount,
                expires_at=result.expires_at,
            )
        ]
        if result.created:
            events.append(credits_changed(user_id, result.balance, "hold"))
        return events
    if result.status == HoldStatus.REJECTED:
        return [
            CreditsRejectedV1(
                user_id=user_id,
                job_kind=job_kind,
                job_id=job_id,  # type: ignore[arg-type]
                reason="insufficient_credits",
                required=result.amount,
                available=result.balance.available,
            )
        ]
    if result.status == HoldStatus.EXPIRED:
        # The job asks again because it never heard of its hold's expiry: tell it again.
        return [_expired(user_id, job_kind, job_id, result.hold_id, result.amount)]
    # settled: the job's outcome arrived, so it is over; a late duplicate gets no answer.
    return []


def settlement_events(user_id: str, result: SettleResult) -> list[Event]:
    """An outcome that moved credits raises their change; a repeated one raises nothing."""
    if result.changed and result.balance is not None:
        return [credits_changed(user_id, result.balance, "settle")]
    return []


def expiry_events(hold: DueHold, balance: Balance) -> list[Event]:
    """A hold the sweeper expired: the job is told, and the user's credits changed."""
    return [
        _expired(hold.user_id, hold.job_kind, hold.job_id, hold.id, hold.amount),
        credits_changed(hold.user_id, balance, "hold_expired"),
    ]


def _expired(
    user_id: str, job_kind: str, job_id: object, hold_id: uuid.UUID, credits: int
) -> HoldExpiredV1:
    return HoldExpiredV1(
        user_id=user_id,
        job_kind=job_kind,  # type: ignore[arg-type]
        job_id=job_id,  # type: ignore[arg-type]
        hold_id=hold_id,
        credits=credits,
    )
