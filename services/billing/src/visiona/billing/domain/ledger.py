"""The credit ledger: what its entries are and what it guarantees.

The rules are enforced in PostgreSQL, by the schema and the functions of migration 0002
(``post_entry``, ``place_hold``, ``settle_hold``, ``claw_back``), because each movement must be
one atomic, idempotent statement; ``repository/ledger.py`` is the one place that calls them.
What they guarantee, at every commit, for every user:

- ``balance`` is what the user owns, ``held`` what open holds reserve of it, and
  available = balance - held; 0 <= held <= balance (CHECKs on ``accounts``): a movement that
  would break it is refused (``insufficient``, a hold ``rejected``), never clipped, except the
  two that take what there is and record the rest (a late capture, a clawback).
- ``ledger_entries`` is append-only (a trigger, and no role but the owner may change it; the
  one exception is an erasure's ``erase_ledger_entries``). Each entry carries both deltas and
  the totals after it: sum(delta_balance) = balance and sum(delta_held) = held.
- Every movement is idempotent by its key, per user: a key seen before changes nothing
  (``duplicate``). Holds are keyed by their job (see :mod:`.hold`).

Entry kinds (the CHECK on ``ledger_entries.kind``), by the function that writes them:

- ``purchase`` (a pack paid), ``plan_grant`` (a plan's invoice paid): credits, ``post_entry``
- ``adjustment``: an operator's correction either way, ``post_entry``; a debit only from
  available credits
- ``hold``: available credits become held for a job, ``place_hold``
- ``capture`` (the price of what a job delivered leaves the balance) and ``release`` (the rest
  of the hold becomes available again): ``settle_hold``
- ``refund_clawback``: the credits a refunded payment bought, taken back from the available
  credits (never below zero; what could not be taken is recorded as uncollected), ``claw_back``
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from visiona.kit.events import CreditsChangedV1

PURCHASE = "purchase"
PLAN_GRANT = "plan_grant"
ADJUSTMENT = "adjustment"
HOLD = "hold"
CAPTURE = "capture"
RELEASE = "release"
REFUND_CLAWBACK = "refund_clawback"
ENTRY_KINDS = frozenset({PURCHASE, PLAN_GRANT, ADJUSTMENT, HOLD, CAPTURE, RELEASE, REFUND_CLAWBACK})

# post_entry's and claw_back's answers.
APPLIED = "applied"
DUPLICATE = "duplicate"
INSUFFICIENT = "insufficient"


# Keys follow from what caused the movement, so a redelivery moves nothing twice.
def purchase_key(checkout_session_id: str) -> str:
    return f"{PURCHASE}:{checkout_session_id}"


def plan_grant_key(invoice_id: str) -> str:
    return f"{PLAN_GRANT}:{invoice_id}"


def clawback_key(charge_id: str, amount_refunded: int) -> str:
    """One clawback per refunded total of a charge: each further refund is another."""
    return f"clawback:{charge_id}:{amount_refunded}"


def adjustment_key(idempotency_key: str) -> str:
    return f"{ADJUSTMENT}:{idempotency_key}"


def clawback_due(*, granted: int, amount: int, refunded: int, asked: int) -> int:
    """Credits a refund takes back: the share of the ``granted`` credits that the refunded
    share of the payment (``refunded`` of ``amount``) bought, minus what earlier refunds of the
    same payment already asked back (``asked``). Zero or less: nothing more to take."""
    return granted * min(refunded, amount) // amount - asked


@dataclass(frozen=True)
class Balance:
    balance: int
    held: int

    @property
    def available(self) -> int:
        return self.balance - self.held


@dataclass(frozen=True)
class PostResult:
    status: str  # applied | duplicate | insufficient
    balance: Balance

    @property
    def applied(self) -> bool:
        return self.status == APPLIED


@dataclass(frozen=True)
class ClawbackResult:
    status: str  # applied | duplicate
    taken: int
    uncollected: int
    balance: Balance


@dataclass(frozen=True)
class Entry:
    id: int
    kind: str
    delta_balance: int
    delta_held: int
    balance_after: int
    held_after: int
    reference: str | None
    reason: str | None
    created_at: datetime


def credits_changed(user_id: str, balance: Balance, cause: str) -> CreditsChangedV1:
    """What every movement that changed the user's credits raises (the web app's live view)."""
    return CreditsChangedV1(
        user_id=user_id,
        balance=balance.balance,
        held=balance.held,
        available=balance.available,
        cause=cause,
    )
