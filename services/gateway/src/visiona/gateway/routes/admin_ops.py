"""The operator console's view of the plumbing (``/v1/admin``): dead-lettered events, replayed
or discarded one by one, and each outbox's backlog.

Each back service answers for its own consumer groups and outbox (``visiona.admin.v1.
OpsService``, visiona.kit.runtime.ops), the gateway for its own from this process: no process
reads another's outbox or needs rights on another's queues. Operators only, as every admin
route (routes/admin.py); every call is in the audit log, about no user (dead letters name
events, not people).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from visiona.admin.v1 import admin_pb2
from visiona.gateway.account import audit
from visiona.gateway.clients import user_call
from visiona.gateway.edge.auth import CurrentOperator, operator
from visiona.gateway.edge.openapi import INVALID, problems, unavailable
from visiona.gateway.routes.admin import NOT_FOUND, REASONED, reason_of
from visiona.gateway.schemas.admin import (
    SERVICES,
    ConsumerDeadLetters,
    DeadLetters,
    OutboxBacklog,
    Reason,
    Service,
    ServiceBacklog,
    ServiceDeadLetters,
)
from visiona.kit.runtime.ops import Operations, letter_message

router = APIRouter(
    prefix="/admin",
    tags=["admin"],
    dependencies=[Depends(operator)],
    responses=unavailable("A back service or the broker is unavailable")
    | problems({404: NOT_FOUND}),
)

Consumer = Annotated[
    str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$", description="Group")
]
EventId = Annotated[str, Path(min_length=1, max_length=100, description="The event's id")]
Why = Annotated[str | None, Query(max_length=500, description="Why you look (audited)")]


def _local(request: Request) -> Operations:
    return Operations(request.app.state.backplane)


async def _dead_letters(request: Request, service: Service, limit: int) -> ServiceDeadLetters:
    if service == "gateway":
        groups = [
            admin_pb2.ConsumerDeadLetters(
                consumer=g.consumer, count=g.count, letters=[letter_message(x) for x in g.letters]
            )
            for g in await _local(request).dead_letters(limit)
        ]
    else:
        backends, call = user_call(request, None)
        r = await backends.ops[service].ListDeadLetters(
            admin_pb2.ListDeadLettersRequest(limit=limit), **call
        )
        groups = list(r.consumers)
    return ServiceDeadLetters(
        service=service, consumers=[ConsumerDeadLetters.from_proto(g) for g in groups]
    )


@router.get(
    "/dead-letters",
    response_model=DeadLetters,
    responses=problems({422: INVALID}),
    summary="Every consumer group's dead letters: counts and the oldest few",
    operation_id="adminListDeadLetters",
)
async def list_dead_letters(
    request: Request,
    op: CurrentOperator,
    service: Annotated[Service | None, Query(description="One service (default: all)")] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Letters shown per group")] = 20,
    reason: Why = None,
) -> DeadLetters:
    services = [service] if service else list(SERVICES)
    found = await asyncio.gather(*(_dead_letters(request, s, limit) for s in services))
    await audit.record_operator(
        request,
        op.user_id,
        "admin.dead_letters.listed",
        user_id=None,
        reason=reason,
        details={"services": services, "count": sum(c.count for s in found for c in s.consumers)},
    )
    return DeadLetters(services=list(found))


async def _settle(
    request: Request,
    op_id: str,
    service: Service,
    consumer: str,
    event_id: str,
    body: Reason,
    *,
    replay: bool,
) -> None:
    why = reason_of(body)
    if service == "gateway":
        await _local(request).settle(consumer, event_id, replay=replay)
    else:
        backends, call = user_call(request, None)
        stub = backends.ops[service]
        if replay:
            await stub.ReplayDeadLetter(
                admin_pb2.ReplayDeadLetterRequest(consumer=consumer, event_id=event_id), **call
            )
        else:
            await stub.DiscardDeadLetter(
                admin_pb2.DiscardDeadLetterRequest(consumer=consumer, event_id=event_id), **call
            )
    await audit.record_operator(
        request,
        op_id,
        "admin.dead_letter.replayed" if replay else "admin.dead_letter.discarded",
        user_id=None,
        reason=why,
        details={"service": service, "consumer": consumer, "event_id": event_id},
    )


SETTLE_PROBLEMS = REASONED | problems(
    {404: "Not an operator, or no such group (`consumer_not_found`) or dead letter "
     "(`dead_letter_not_found`)"}
)  # fmt: skip


@router.post(
    "/dead-letters/{service}/{consumer}/{event_id}/replay",
    status_code=204,
    responses=SETTLE_PROBLEMS,
    summary="Send one dead letter back to its consumer group (its inbox applies it once)",
    operation_id="adminReplayDeadLetter",
)
async def replay_dead_letter(
    service: Service,
    consumer: Consumer,
    event_id: EventId,
    body: Reason,
    request: Request,
    op: CurrentOperator,
) -> None:
    await _settle(request, op.user_id, service, consumer, event_id, body, replay=True)


@router.post(
    "/dead-letters/{service}/{consumer}/{event_id}/discard",
    status_code=204,
    responses=SETTLE_PROBLEMS,
    summary="Remove one dead letter for good (it is never applied)",
    operation_id="adminDiscardDeadLetter",
)
async def discard_dead_letter(
    service: Service,
    consumer: Consumer,
    event_id: EventId,
    body: Reason,
    request: Request,
    op: CurrentOperator,
) -> None:
    await _settle(request, op.user_id, service, consumer, event_id, body, replay=False)


async def _backlog(request: Request, service: Service) -> ServiceBacklog:
    if service == "gateway":
        b = await _local(request).outbox_backlog()
        return ServiceBacklog(
            service=service, unpublished=b.unpublished, oldest_age_s=b.oldest_age_s
        )
    backends, call = user_call(request, None)
    r = await backends.ops[service].GetOutboxBacklog(admin_pb2.GetOutboxBacklogRequest(), **call)
    return ServiceBacklog(service=service, unpublished=r.unpublished, oldest_age_s=r.oldest_age_s)


@router.get(
    "/outbox",
    response_model=OutboxBacklog,
    summary="Each service's outbox: events not yet published, and the oldest one's age",
    operation_id="adminOutboxBacklog",
)
async def outbox_backlog(
    request: Request, op: CurrentOperator, reason: Why = None
) -> OutboxBacklog:
    found = await asyncio.gather(*(_backlog(request, s) for s in SERVICES))
    await audit.record_operator(
        request, op.user_id, "admin.outbox.read", user_id=None, reason=reason
    )
    return OutboxBacklog(services=list(found))
