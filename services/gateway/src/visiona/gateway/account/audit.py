"""The audit log: security-relevant actions on an account, in the gateway's ``audit_log``.

Recorded: ``billing.checkout_created`` and ``billing.portal_opened`` (routes/billing.py),
``credits.adjusted`` (an operator's AdjustCredits in billing, seen through its
``billing.credits.changed.v1`` event with cause ``adjustment``), and whatever the account
flows record (deletion, export). Rate-limited requests are logged, not audited (too many).

An entry names the user, who acted (``user``, ``system`` or ``operator``), the action, the
request id, a keyed hash of the client's network (never the address) and ``details`` that
must hold neither secrets nor personal data: ids, kinds, amounts. Entries go when the user's
erasure completes (the erasure receipt replaces them). The user may read their own
(``GET /v1/me/audit``). The statements are in visiona.gateway.repository.audit.

Operators' actions (routes/admin.py, ``admin.*``) are entries with actor ``operator``:
``details`` names the operator by a keyed hash (``operator``, as the client's network is:
the same operator is the same hash everywhere in the log, and only who holds the key can tell
which operator it was, by hashing the operators' ids) and the ``reason`` they gave. An action
on one user's account (a job, their credits, a look at their data) is in that user's log, so
they see that support acted and why; one about no user (the list of stuck jobs across users)
has no user id and is written as the system principal.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from starlette.requests import Request

from visiona.gateway.edge.pseudonyms import Pseudonyms
from visiona.gateway.repository import audit as repository
from visiona.gateway.repository.audit import Entry
from visiona.kit.db import Database, UnitOfWork
from visiona.kit.events import CreditsChangedV1
from visiona.kit.logging import get_logger

log = get_logger(__name__)

Actor = Literal["user", "system", "operator"]

CONSUMER = "gateway-audit"
# The cause billing gives a manual correction (visiona.billing.service.BillingService.adjust).
ADJUSTMENT_CAUSE = "adjustment"


async def record(
    uow: UnitOfWork,
    *,
    action: str,
    user_id: str | None,
    request: Request | None = None,
    details: Mapping[str, Any] | None = None,
    actor: Actor = "user",
) -> None:
    """Add an entry in ``uow``'s transaction (opened for ``user_id``; an entry about no user
    needs the system principal). ``request`` gives the request id and the client's hashed
    network."""
    ip_hash = request_id = None
    if request is not None:
        request_id = getattr(request.state, "request_id", None)
        pseudonyms: Pseudonyms | None = getattr(request.app.state, "pseudonyms", None)
        if pseudonyms is not None:
            ip_hash = pseudonyms.ip("audit-ip", request.client.host if request.client else None)
    await repository.insert(
        uow,
        user_id=user_id,
        actor=actor,
        action=action,
        ip_hash=ip_hash,
        request_id=request_id,
        details=details or {},
    )


async def record_for(
    request: Request,
    user_id: str,
    action: str,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Record, in a unit of work of its own, an action a route has just completed for the
    user. The action happened: a failure to audit it is logged, not turned into an error the
    client would retry (and so repeat the action)."""
    try:
        async with request.app.state.backplane.db.uow(user_id) as uow:
            await record(uow, action=action, user_id=user_id, request=request, details=details)
            await uow.commit()
    except Exception:
        log.exception("audit.record_failed", action=action)


def operator_ref(request: Request, operator_id: str) -> str:
    """The operator as the audit log names them (see the module)."""
    pseudonyms: Pseudonyms = request.app.state.pseudonyms
    return pseudonyms.of("audit-operator", operator_id)


async def record_operator(
    request: Request,
    operator_id: str,
    action: str,
    *,
    user_id: str | None,
    reason: str | None,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Record an operator's action in a unit of work of its own: on ``user_id``'s account, or
    about no user (``None``). Unlike :func:`record_for` a failure is raised: an operator's
    read is refused rather than served unaudited (a change records after it is made, so the
    operator sees that the record failed, and the action's own log line remains)."""
    entry = {
        **(details or {}),
        "operator": operator_ref(request, operator_id),
        "reason": reason,
    }
    db: Database = request.app.state.backplane.db
    async with db.uow(user_id, system=user_id is None) as uow:
        await record(
            uow, action=action, user_id=user_id, request=request, details=entry, actor="operator"
        )
        await uow.commit()


async def page(
    db: Database, user_id: str, after: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[Entry]:
    """The user's entries, newest first, after the cursor position."""
    async with db.uow(user_id) as uow:
        return await repository.page(uow, user_id, after, limit)


async def on_credits_changed(event: CreditsChangedV1, uow: UnitOfWork) -> None:
    """Billing's credit changes: an adjustment is an operator's act on the account."""
    if event.cause != ADJUSTMENT_CAUSE:
        return
    await record(
        uow,
        action="credits.adjusted",
        user_id=event.user_id,
        actor="operator",
        details={
            "event_id": str(event.event_id),
            "balance": event.balance,
            "available": event.available,
        },
    )
