"""The prompts service's part in the user's erasure and export sagas (contract in
``visiona.kit.events``). No provider holds anything of the user (the LLM calls are
stateless), so both run in the consumer's transaction, with its inbox claim.

- Erasure: the user's enhancements, cached answers and moderation decisions are deleted, and
  the published events about the user, then the round is answered with what was removed.
- Export: the user's enhancements and moderation decisions as JSON under
  ``exports/<export_id>/prompts/`` (the cache is not the user's record: it repeats answers
  already in those two, for 24 hours).
"""

from __future__ import annotations

from collections.abc import Mapping

from visiona.kit.consumer import EventHandler
from visiona.kit.db import UnitOfWork
from visiona.kit.erasure import ExportPart, forget_published_events
from visiona.kit.events import (
    ErasureRequestedV1,
    Event,
    ExportRequestedV1,
    PromptsAccountExportedV1,
    PromptsAccountPurgedV1,
)
from visiona.kit.logging import get_logger
from visiona.kit.storage import Storage
from visiona.prompts.repository import AccountRepository

log = get_logger(__name__)

ACCOUNT_CONSUMER = "prompts.account"


class AccountData:
    def __init__(self, storage: Storage | None) -> None:
        self.storage = storage

    async def erasure_requested(self, event: ErasureRequestedV1, uow: UnitOfWork) -> None:
        removed = await AccountRepository(uow.session).delete_all(event.user_id)
        removed += await forget_published_events(uow, event.user_id)
        uow.emit(
            PromptsAccountPurgedV1(
                deletion_id=event.deletion_id, round=event.round, removed=removed
            )
        )
        log.info("prompts.erasure_purged", round=event.round, removed=removed)

    async def export_requested(self, event: ExportRequestedV1, uow: UnitOfWork) -> None:
        if self.storage is None:
            raise RuntimeError("prompts has no S3 storage configured (PROMPTS_S3_ENDPOINT)")
        repo = AccountRepository(uow.session)
        part = ExportPart(self.storage, event.export_id, "prompts")
        await part.add_records("enhancements", await repo.enhancements(event.user_id))
        await part.add_records(
            "moderation_decisions", await repo.moderation_decisions(event.user_id)
        )
        uow.emit(part.done(PromptsAccountExportedV1, event.user_id))
        log.info("prompts.export_written", objects=part.objects, bytes=part.bytes)

    def handlers(self) -> Mapping[type[Event], EventHandler]:
        return {
            ErasureRequestedV1: self.erasure_requested,
            ExportRequestedV1: self.export_requested,
        }
