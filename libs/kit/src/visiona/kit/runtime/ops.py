"""What an operator needs of a process's own plumbing: its consumer groups' dead letters and
its outbox backlog (:class:`Operations`), and the gRPC face of it every back service serves
alike (:class:`OpsServicer`, ``visiona.admin.v1.OpsService``, registered by ``serve``).

Each service answers for its own queues and its own outbox, so schema ownership holds (no one
reads another's outbox) and the gateway needs no broker rights over other services' queues;
the gateway answers for its own groups and outbox in its process. Only the system principal
may call (the gateway's ``/v1/admin`` routes, for operators). Nothing shown carries an event's
payload (it names users): its id, routing key and why it died.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
import sqlalchemy as sa

from visiona.admin.v1 import admin_pb2, admin_pb2_grpc
from visiona.kit import deadletters
from visiona.kit.deadletters import DeadLetter
from visiona.kit.errors import InvalidArgument, NotFound
from visiona.kit.grpcserver import require_system, timestamp
from visiona.kit.runtime.spec import Wiring

DEFAULT_SHOWN = 20
MAX_SHOWN = 100

_BACKLOG = sa.text(
    "SELECT count(*) AS n, "
    "COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0) AS oldest_s "
    "FROM outbox WHERE published_at IS NULL"
)


@dataclass(frozen=True)
class GroupDeadLetters:
    consumer: str
    count: int
    letters: list[DeadLetter]


@dataclass(frozen=True)
class Backlog:
    unpublished: int
    oldest_age_s: float


class Operations:
    """The dead letters and outbox of the process ``wiring`` describes."""

    def __init__(self, wiring: Wiring) -> None:
        self.wiring = wiring

    def consumers(self) -> list[str]:
        return sorted(c.name for c in self.wiring.consumers)

    async def dead_letters(self, limit: int) -> list[GroupDeadLetters]:
        if not 0 <= limit <= MAX_SHOWN:
            raise InvalidArgument(f"limit must be 1-{MAX_SHOWN}", code="limit_invalid")
        groups = []
        for consumer in self.consumers():
            count, letters = await deadletters.inspect(
                self.wiring.bus, consumer, limit or DEFAULT_SHOWN
            )
            groups.append(GroupDeadLetters(consumer, count, letters))
        return groups

    async def settle(self, consumer: str, event_id: str, *, replay: bool) -> None:
        """Replay or discard one dead letter of one of this process's groups."""
        if consumer not in self.consumers():
            raise NotFound("no such consumer group here", code="consumer_not_found")
        if not event_id or len(event_id) > 100:
            raise NotFound("no such dead letter", code="dead_letter_not_found")
        if not await deadletters.settle_one(self.wiring.bus, consumer, event_id, replay=replay):
            raise NotFound("no such dead letter", code="dead_letter_not_found")

    async def outbox_backlog(self) -> Backlog:
        async with self.wiring.db.uow(system=True) as uow:
            row = (await uow.session.execute(_BACKLOG)).one()
        return Backlog(int(row.n), float(row.oldest_s))


def letter_message(letter: DeadLetter) -> admin_pb2.DeadLetter:
    return admin_pb2.DeadLetter(
        event_id=letter.event_id or "",
        routing_key=letter.routing_key,
        reason=letter.reason or "",
        deaths=letter.deaths,
        died_at=timestamp(letter.died_at),
    )


class OpsServicer(admin_pb2_grpc.OpsServiceServicer):  # type: ignore[misc]
    def __init__(self, ops: Operations) -> None:
        self.ops = ops

    async def ListDeadLetters(
        self, request: admin_pb2.ListDeadLettersRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.ListDeadLettersResponse:
        require_system()
        groups = await self.ops.dead_letters(request.limit)
        return admin_pb2.ListDeadLettersResponse(
            consumers=[
                admin_pb2.ConsumerDeadLetters(
                    consumer=g.consumer,
                    count=g.count,
                    letters=[letter_message(letter) for letter in g.letters],
                )
                for g in groups
            ]
        )

    async def ReplayDeadLetter(
        self, request: admin_pb2.ReplayDeadLetterRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.ReplayDeadLetterResponse:
        require_system()
        await self.ops.settle(request.consumer, request.event_id, replay=True)
        return admin_pb2.ReplayDeadLetterResponse()

    async def DiscardDeadLetter(
        self, request: admin_pb2.DiscardDeadLetterRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.DiscardDeadLetterResponse:
        require_system()
        await self.ops.settle(request.consumer, request.event_id, replay=False)
        return admin_pb2.DiscardDeadLetterResponse()

    async def GetOutboxBacklog(
        self, request: admin_pb2.GetOutboxBacklogRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.GetOutboxBacklogResponse:
        require_system()
        backlog = await self.ops.outbox_backlog()
        return admin_pb2.GetOutboxBacklogResponse(
            unpublished=backlog.unpublished, oldest_age_s=backlog.oldest_age_s
        )
