"""Tables of the prompts schema."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA = "prompts"


class Base(DeclarativeBase):
    metadata = sa.MetaData(schema=SCHEMA)


class EnhancementRow(Base):
    """One stored enhancement (user-owned: row-level security on user_id)."""

    __tablename__ = "enhancements"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    user_id: Mapped[str] = mapped_column(sa.Text, index=True)
    prompt: Mapped[str] = mapped_column(sa.Text)
    enhanced_prompt: Mapped[str] = mapped_column(sa.Text)
    model: Mapped[str] = mapped_column(sa.Text)
    input_tokens: Mapped[int] = mapped_column(sa.Integer)
    output_tokens: Mapped[int] = mapped_column(sa.Integer)
    created_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now()
    )


class StylePackRow(Base):
    """One pack of the curated catalogue (seeded by migration; not user-owned)."""

    __tablename__ = "style_packs"

    id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    position: Mapped[int] = mapped_column(sa.Integer, unique=True)
    name: Mapped[str] = mapped_column(sa.Text)
    description: Mapped[str] = mapped_column(sa.Text)
    negative_cues: Mapped[list[str]] = mapped_column(ARRAY(sa.Text))


class StyleTemplateRow(Base):
    """One template of a pack; contains ``{subject}``."""

    __tablename__ = "style_templates"

    pack_id: Mapped[str] = mapped_column(
        sa.Text, sa.ForeignKey(f"{SCHEMA}.style_packs.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    template: Mapped[str] = mapped_column(sa.Text)


class PromptCacheRow(Base):
    """A PreparePrompt answer, served again for the same user and key until it expires
    (user-owned: row-level security on user_id)."""

    __tablename__ = "prompt_cache"

    user_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    key: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    provider: Mapped[str] = mapped_column(sa.Text)
    model: Mapped[str] = mapped_column(sa.Text)
    answer: Mapped[dict[str, Any]] = mapped_column(JSONB)
    enhancement_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now()
    )
    expires_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), index=True)


class ModerationDecisionRow(Base):
    """A refused prompt and why (user-owned: row-level security on user_id)."""

    __tablename__ = "moderation_decisions"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    user_id: Mapped[str] = mapped_column(sa.Text, index=True)
    prompt: Mapped[str] = mapped_column(sa.Text)
    style_pack: Mapped[str | None] = mapped_column(sa.Text)
    # rules | llm | provider (the provider's own safety system)
    source: Mapped[str] = mapped_column(sa.Text)
    category: Mapped[str] = mapped_column(sa.Text)
    message: Mapped[str] = mapped_column(sa.Text)
    provider: Mapped[str | None] = mapped_column(sa.Text)
    model: Mapped[str | None] = mapped_column(sa.Text)
    from_cache: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    created_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now()
    )
