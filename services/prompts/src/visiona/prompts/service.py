"""Use cases of the prompts service."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from visiona.kit.db import Database
from visiona.kit.events import PromptEnhancementCreatedV1
from visiona.prompts.domain import Enhancement, clean_prompt
from visiona.prompts.llm import PromptEnhancer
from visiona.prompts.repository import EnhancementRepository


class PromptsService:
    def __init__(self, db: Database, enhancer: PromptEnhancer) -> None:
        self.db = db
        self.enhancer = enhancer

    async def enhance_prompt(self, user_id: str, prompt: str) -> Enhancement:
        """Ask the LLM for a richer prompt, then store it and its event in one transaction.

        The LLM call happens before the transaction opens: no connection is held while it runs.
        """
        text = clean_prompt(prompt)
        completion = await self.enhancer.enhance(text)
        enhancement = Enhancement(
            id=uuid.uuid4(),
            user_id=user_id,
            prompt=text,
            enhanced_prompt=completion.text,
            model=completion.model,
            input_tokens=completion.input_tokens,
            output_tokens=completion.output_tokens,
            created_at=datetime.now(UTC),
        )
        async with self.db.uow(user_id) as uow:
            stored = await EnhancementRepository(uow.session).add(enhancement)
            uow.emit(
                PromptEnhancementCreatedV1(
                    user_id=user_id,
                    enhancement_id=stored.id,
                    model=stored.model,
                    input_tokens=stored.input_tokens,
                    output_tokens=stored.output_tokens,
                )
            )
            await uow.commit()
        return stored
