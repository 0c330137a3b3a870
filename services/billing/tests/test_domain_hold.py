"""The hold state machine and the answers a job's request and outcome get, without I/O."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from visiona.billing.domain.catalog import Catalog
from visiona.billing.domain.hold import (
    TRANSITIONS,
    DueHold,
    HoldResult,
    HoldStatus,
    SettleResult,
    answer_to_request,
    can_become,
    expiry_events,
    hold_key,
    hold_terms,
    settlement_events,
)
from visiona.billing.domain.ledger import Balance
from visiona.kit.events import (
    CreditsChangedV1,
    CreditsRejectedV1,
    CreditsReservedV1,
    HoldExpiredV1,
)

CATALOG = Catalog.load()
USER, JOB = "user_a", uuid.UUID(int=7)
EXPIRES = datetime(2026, 1, 1, tzinfo=UTC)


def placed(status: str, *, created: bool = True, balance: Balance = Balance(100, 8)) -> HoldResult:
    return HoldResult(uuid.UUID(int=1), status, 8, balance, EXPIRES, created)


def answer(result: HoldResult) -> list[object]:
    return list(answer_to_request(result, user_id=USER, job_kind="generation", job_id=JOB))


def test_a_hold_is_placed_open_or_rejected_and_only_an_open_one_settles_or_expires() -> None:
    assert can_become(None, HoldStatus.OPEN) and can_become(None, HoldStatus.REJECTED)
    assert can_become(HoldStatus.OPEN, HoldStatus.SETTLED)
    assert can_become(HoldStatus.OPEN, HoldStatus.EXPIRED)
    assert not can_become(None, HoldStatus.SETTLED)
    assert not can_become(HoldStatus.OPEN, HoldStatus.REJECTED)


def test_an_expired_hold_may_still_settle_a_late_outcome() -> None:
    assert can_become(HoldStatus.EXPIRED, HoldStatus.SETTLED)
    assert not can_become(HoldStatus.EXPIRED, HoldStatus.OPEN)


@pytest.mark.parametrize("final", [HoldStatus.SETTLED, HoldStatus.REJECTED])
def test_settled_and_rejected_holds_are_final(final: HoldStatus) -> None:
    assert TRANSITIONS[final] == frozenset()
    assert not any(can_become(final, status) for status in HoldStatus)


def test_a_hold_is_keyed_by_its_job() -> None:
    assert hold_key("generation", JOB) == f"generation:{JOB}"


def test_a_generation_holds_the_image_price_per_image_for_its_lifetime() -> None:
    terms = hold_terms(CATALOG, "generation", 3)
    assert terms.amount == 3 * CATALOG.prices.generation_image
    assert terms.ttl == timedelta(seconds=CATALOG.hold_ttl_s.generation)
    training = hold_terms(CATALOG, "training", 1)
    assert (training.amount, training.ttl) == (
        CATALOG.prices.training,
        timedelta(seconds=CATALOG.hold_ttl_s.training),
    )


def test_a_new_open_hold_answers_reserved_and_raises_the_credit_change() -> None:
    reserved, changed = answer(placed("open"))
    assert isinstance(reserved, CreditsReservedV1) and isinstance(changed, CreditsChangedV1)
    assert (reserved.job_id, reserved.credits, reserved.expires_at) == (JOB, 8, EXPIRES)
    assert (changed.balance, changed.held, changed.available, changed.cause) == (100, 8, 92, "hold")


def test_a_request_asked_again_for_an_open_hold_is_answered_reserved_alone() -> None:
    (reserved,) = answer(placed("open", created=False))
    assert isinstance(reserved, CreditsReservedV1)


def test_a_rejected_hold_answers_with_what_was_required_and_available() -> None:
    (rejected,) = answer(placed("rejected", balance=Balance(5, 2)))
    assert isinstance(rejected, CreditsRejectedV1)
    assert (rejected.reason, rejected.required, rejected.available) == (
        "insufficient_credits",
        8,
        3,
    )


def test_a_request_for_an_expired_hold_is_told_of_the_expiry_again() -> None:
    (expired,) = answer(placed("expired", created=False))
    assert isinstance(expired, HoldExpiredV1) and expired.credits == 8


def test_a_request_for_a_settled_hold_gets_no_answer() -> None:
    assert answer(placed("settled", created=False)) == []


def test_only_a_settlement_that_moved_credits_raises_their_change() -> None:
    moved = SettleResult("settled", 4, 4, Balance(96, 0), True)
    (changed,) = settlement_events(USER, moved)
    assert isinstance(changed, CreditsChangedV1) and changed.cause == "settle"
    assert settlement_events(USER, SettleResult("settled", 4, 4, Balance(96, 0), False)) == []
    assert settlement_events(USER, SettleResult("erased", 0, 0, None, False)) == []


def test_an_expired_hold_tells_the_job_and_raises_the_credit_change() -> None:
    hold = DueHold(uuid.UUID(int=2), USER, f"training:{JOB}", "training", str(JOB), 10)
    expired, changed = expiry_events(hold, Balance(50, 0))
    assert isinstance(expired, HoldExpiredV1) and isinstance(changed, CreditsChangedV1)
    assert (expired.job_kind, expired.job_id, expired.credits) == ("training", JOB, 10)
    assert (changed.available, changed.cause) == (50, "hold_expired")
