"""Erasure: the user's enhancements, cached answers and moderation decisions are deleted, and
the published events about the user, then the round is answered with what was removed."""

from __future__ import annotations

from visiona.kit.db import UnitOfWork
from visiona.kit.erasure import forget_published_events
from visiona.kit.events import ErasureRequestedV1, PromptsAccountPurgedV1
from visiona.kit.logging import get_logger
from visiona.prompts.repository import AccountRepository

log = get_logger(__name__)


async def erase_account(event: ErasureRequestedV1, uow: UnitOfWork) -> None:
    removed = await AccountRepository(uow.session).delete_all(event.user_id)
    removed += await forget_published_events(uow, event.user_id)
    uow.emit(
        PromptsAccountPurgedV1(deletion_id=event.deletion_id, round=event.round, removed=removed)
    )
    log.info("prompts.erasure_purged", round=event.round, removed=removed)
