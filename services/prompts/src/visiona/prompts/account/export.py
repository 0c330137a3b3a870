"""Export: the user's enhancements and moderation decisions as JSON under
``exports/<export_id>/prompts/`` (the cache is not the user's record: it repeats answers
already in those two, for 24 hours)."""

from __future__ import annotations

from visiona.kit.db import UnitOfWork
from visiona.kit.erasure import ExportPart
from visiona.kit.events import ExportRequestedV1, PromptsAccountExportedV1
from visiona.kit.logging import get_logger
from visiona.kit.storage import Storage
from visiona.prompts.repository import AccountRepository

log = get_logger(__name__)


async def export_account(
    storage: Storage | None, event: ExportRequestedV1, uow: UnitOfWork
) -> None:
    if storage is None:
        raise RuntimeError("prompts has no S3 storage configured (PROMPTS_S3_ENDPOINT)")
    repo = AccountRepository(uow.session)
    part = ExportPart(storage, event.export_id, "prompts")
    await part.add_records("enhancements", await repo.enhancements(event.user_id))
    await part.add_records("moderation_decisions", await repo.moderation_decisions(event.user_id))
    uow.emit(part.done(PromptsAccountExportedV1, event.user_id))
    log.info("prompts.export_written", objects=part.objects, bytes=part.bytes)
