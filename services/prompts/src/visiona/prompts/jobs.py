"""Background work on the prompts schema's rows: the prompt cache's sweep."""

from __future__ import annotations

from visiona.kit.db import Database
from visiona.kit.logging import get_logger
from visiona.kit.sweeps import delete_in_batches
from visiona.prompts.repository import PromptCacheRepository

log = get_logger(__name__)


async def sweep_prompt_cache(db: Database) -> int:
    """Delete expired cache entries of every user (explicit cross-user work: the system
    principal, whose policy lets it see and delete only expired entries)."""
    deleted = await delete_in_batches(
        db, lambda session: PromptCacheRepository(session).delete_expired(), system=True
    )
    if deleted:
        log.info("prompt_cache.swept", deleted=deleted)
    return deleted
