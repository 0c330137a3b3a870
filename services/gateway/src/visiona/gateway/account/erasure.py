"""Account erasure (GDPR art. 17 / CCPA): the saga the gateway runs for ``DELETE /v1/me`` and
for Clerk's ``user.deleted``.

One ``deletions`` row per user is the saga's state and its own job (visiona.kit.jobs.RowJobs):

1. **scheduled**: the request is recorded (and from now on the edge refuses the user's writes
   with 409 ``account_erasing``). At once, the ``journal`` step leaves the erasure in the
   backup bucket's erasure journal (``erasures/<pseudonym>.json``, when
   ``erasure_journal_bucket`` is set), so that restoring a backup taken before it erases the
   user again (docs/adr/0014-backups-and-restore.md); the request never waits on S3 for it.
   The first round waits ``erasure_grace_s`` from the request, longer than the longest
   request deadline, so that nothing the user started before asking is still being written
   when the services look.
2. **erasing**, in rounds: ``gateway.account.erasure_requested.v1`` asks every participant
   (training, generation, billing, prompts) to remove everything it holds of the user; each
   answers ``<service>.account.purged.v1`` with how much it removed. A round not answered by
   all within ``erasure_round_timeout_s`` is asked again (participants are idempotent). When
   every answer is in, a round that removed anything is followed by another one
   ``erasure_settle_s`` later; the first round that removes nothing ends the erasure, so work
   that was still in flight after an earlier round (a late webhook, a job mid-step) is caught.
3. **finishing**: the user's sign-in is deleted at Clerk (unless Clerk told us about the
   deletion), then, in one transaction, the gateway's own data of the user goes (account,
   exports and their objects, idempotency keys, audit entries, published events) and a
   receipt keyed by a keyed hash of the user id replaces the row.

Every step is idempotent and the state is in the database, so a crash of any process at any
point only delays the erasure: the job's lease lapses and the step runs again, and events are
redelivered or asked for again.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from visiona.gateway.account import answers_of
from visiona.gateway.config import GatewaySettings
from visiona.gateway.edge.pseudonyms import Pseudonyms
from visiona.gateway.providers.clerk import ClerkUsersPort
from visiona.gateway.repository import deletion as repository
from visiona.gateway.repository import export as exports
from visiona.gateway.repository.deletion import Deletion, Receipt
from visiona.kit.db import Database, UnitOfWork
from visiona.kit.erasure import ERASURE_JOURNAL_PREFIX, EXPORTS_PREFIX
from visiona.kit.events import (
    ERASURE_PARTICIPANTS,
    AccountPurged,
    DeletionProgressedV1,
    ErasureRequestedV1,
    Event,
)
from visiona.kit.jobs import JobSettings, RowJobs
from visiona.kit.logging import get_logger
from visiona.kit.storage import Storage

log = get_logger(__name__)

PURGED_EVENTS = answers_of(AccountPurged)


def journal_key(subject: str) -> str:
    """Where the erasure journal keeps the erasure of the user ``subject`` stands for."""
    return f"{ERASURE_JOURNAL_PREFIX}{subject}.json"


def subject_of(settings: GatewaySettings, user_id: str) -> str:
    """A keyed hash of the user id: finds a receipt for its user, reveals nobody."""
    return Pseudonyms.from_settings(settings).of("subject", user_id)


async def request_erasure(
    uow: UnitOfWork, settings: GatewaySettings, user_id: str, *, source: str
) -> tuple[Deletion, bool]:
    """Start erasing ``user_id`` (the unit of work must act as that user); the deletion and
    whether this call created it. Asking again while one runs returns the running one."""
    clerk_deleted = source == "clerk"
    created = await repository.insert(
        uow,
        user_id=user_id,
        subject=subject_of(settings, user_id),
        source=source,
        clerk_user_deleted=clerk_deleted,
    )
    deletion = await repository.find(uow, user_id, lock=True)
    assert deletion is not None
    if not created and clerk_deleted and not deletion.clerk_user_deleted:
        # Clerk deleted the user while our own erasure ran: nothing left to delete there.
        await repository.save(uow, deletion, clerk_user_deleted=True)
    if created:
        uow.emit(DeletionProgressedV1(user_id=user_id, deletion_id=deletion.id, status="scheduled"))
    return deletion, created


def view(deletion: Deletion) -> dict[str, Any]:
    """The deletion as GET /v1/me/deletion shows it."""
    services = {
        name: ("done" if deletion.status == "finishing" or name in deletion.answers else "pending")
        for name in ERASURE_PARTICIPANTS
    }
    return {
        "id": deletion.id,
        "status": deletion.status,
        "source": deletion.source,
        "round": deletion.round,
        "services": services,
        "removed": deletion.removed + sum(deletion.answers.values()),
        "requested_at": deletion.requested_at,
        "completed_at": None,
    }


def receipt_view(receipt: Receipt) -> dict[str, Any]:
    return {
        "id": receipt.id,
        "status": "completed",
        "source": receipt.source,
        "round": receipt.rounds,
        "services": dict.fromkeys(ERASURE_PARTICIPANTS, "done"),
        "removed": receipt.removed,
        "requested_at": receipt.requested_at,
        "completed_at": receipt.completed_at,
    }


async def progress(db: Database, settings: GatewaySettings, user_id: str) -> dict[str, Any] | None:
    """The user's erasure as GET /v1/me/deletion shows it: the running one, else the receipt
    of a completed one, else None (none was asked for)."""
    async with db.uow(user_id) as uow:
        deletion = await repository.find(uow, user_id)
        if deletion is not None:
            return view(deletion)
        receipt = await repository.find_receipt(uow, subject_of(settings, user_id))
    return receipt_view(receipt) if receipt is not None else None


class DeletionJobs(RowJobs[Deletion]):
    table = "deletions"
    name = "erasure"

    def __init__(
        self,
        db: Database,
        settings: GatewaySettings,
        storage: Storage | None,
        clerk: ClerkUsersPort,
        journal: Storage | None = None,
    ) -> None:
        super().__init__(
            db,
            JobSettings(poll_interval_s=settings.saga_poll_interval_s, batch=8, lease_s=60.0),
        )
        self.settings = settings
        self.storage = storage
        self.clerk = clerk
        self.journal = journal

    async def load(self, uow: UnitOfWork, row_id: uuid.UUID, *, lock: bool) -> Deletion | None:
        return await repository.load(uow, row_id, lock=lock)

    async def save(self, uow: UnitOfWork, row: Deletion, **changes: Any) -> None:
        await repository.save(uow, row, **changes)

    # -- steps -----------------------------------------------------------------------------------

    async def step_journal(self, row: Deletion) -> None:
        """Leave the erasure in the journal (an idempotent put: at least once), then wait
        out the grace before the first round."""
        if self.journal is not None:
            entry = {
                "subject": row.subject,
                "source": row.source,
                "requested_at": row.requested_at.isoformat(),
            }
            await self.journal.put_bytes(
                journal_key(row.subject),
                json.dumps(entry).encode(),
                content_type="application/json",
            )
        async with self.locked(row) as (uow, current):
            if current.work != "journal":
                return
            await self.save(
                uow,
                current,
                work="start_round",
                work_after=current.requested_at + timedelta(seconds=self.settings.erasure_grace_s),
            )
            await uow.commit()
        log.info("erasure.journaled", deletion_id=str(row.id), journal=self.journal is not None)

    async def step_start_round(self, row: Deletion) -> None:
        async with self.locked(row) as (uow, current):
            if current.work != "start_round":
                return
            number = current.round + 1
            await self.save(
                uow,
                current,
                round=number,
                answers={},
                removed=current.removed + sum(current.answers.values()),
                status="erasing",
                round_started_at=datetime.now(UTC),
                work="reask",
                work_after=datetime.now(UTC)
                + timedelta(seconds=self.settings.erasure_round_timeout_s),
            )
            uow.emit(
                ErasureRequestedV1(user_id=current.user_id, deletion_id=current.id, round=number)
            )
            if number == 1:
                uow.emit(
                    DeletionProgressedV1(
                        user_id=current.user_id, deletion_id=current.id, status="erasing"
                    )
                )
            await uow.commit()
        log.info("erasure.round_started", deletion_id=str(row.id), round=number)

    async def step_reask(self, row: Deletion) -> None:
        """A round some participant has not answered in time: ask again (same round)."""
        async with self.locked(row) as (uow, current):
            if current.work != "reask":
                return
            missing = [s for s in ERASURE_PARTICIPANTS if s not in current.answers]
            await self.save(
                uow,
                current,
                work_after=datetime.now(UTC)
                + timedelta(seconds=self.settings.erasure_round_timeout_s),
            )
            uow.emit(
                ErasureRequestedV1(
                    user_id=current.user_id, deletion_id=current.id, round=current.round
                )
            )
            await uow.commit()
        log.warning(
            "erasure.round_asked_again", deletion_id=str(row.id), round=row.round, missing=missing
        )

    async def step_finish(self, row: Deletion) -> None:
        if not row.clerk_user_deleted:
            if self.clerk.configured:
                await self.clerk.delete_user(row.user_id)
            else:
                log.warning("erasure.clerk_not_configured", deletion_id=str(row.id))
            async with self.locked(row) as (uow, current):
                await self.save(uow, current, clerk_user_deleted=True)
                await uow.commit()
        # Objects first: a crash after this leaves rows that point at nothing, and the step
        # runs again; the other order could leave objects nobody knows about.
        archives = await self._export_keys(row)
        if self.storage is not None:
            for key in archives:
                await self.storage.delete(key)
        async with self.locked(row) as (uow, current):
            if current.work != "finish":
                return
            removed = await repository.forget_gateway_data(uow, current.user_id)
            total = current.removed + sum(current.answers.values()) + removed + len(archives)
            await repository.complete(uow, current, total)
            await uow.commit()
        log.info("erasure.completed", deletion_id=str(row.id), rounds=row.round)

    async def _export_keys(self, row: Deletion) -> list[str]:
        """Every object of the user's exports (archives and parts not yet zipped)."""
        if self.storage is None:
            return []
        async with self.db.uow(row.user_id) as uow:
            export_ids = await exports.ids_of(uow, row.user_id)
        keys: list[str] = []
        for export_id in export_ids:
            keys.extend(k for k, _ in await self.storage.list_keys(f"{EXPORTS_PREFIX}{export_id}"))
        return keys

    # -- answers -----------------------------------------------------------------------------

    async def on_purged(self, event: Event, uow: UnitOfWork) -> None:
        """A participant's answer: recorded for the current round; the last answer decides."""
        assert isinstance(event, AccountPurged)
        await uow.act_as(None, system=True)
        owner = await repository.owner_of(uow, event.deletion_id)
        if owner is None:
            return  # finished already; a late or repeated answer
        await uow.act_as(owner)
        current = await repository.load(uow, event.deletion_id, lock=True)
        if current is None or current.round != event.round or current.work != "reask":
            return  # an answer to an earlier round, or one already counted
        # A round asked again may be answered again with a fresh count (0: done the first
        # time): what the round removed is the largest answer.
        removed = max(event.removed, current.answers.get(event.service, 0))
        answers = {**current.answers, event.service: removed}
        changes: dict[str, Any] = {"answers": answers}
        if all(name in answers for name in ERASURE_PARTICIPANTS):
            now = datetime.now(UTC)
            if sum(answers.values()) == 0:
                changes |= {"status": "finishing", "work": "finish", "work_after": now}
            else:
                changes |= {
                    "work": "start_round",
                    "work_after": now + timedelta(seconds=self.settings.erasure_settle_s),
                }
            changes["work_attempts"] = 0
            uow.after_commit(self.wake)
        await self.save(uow, current, **changes)

    def handlers(self) -> Mapping[type[Event], Any]:
        return dict.fromkeys(PURGED_EVENTS, self.on_purged)
