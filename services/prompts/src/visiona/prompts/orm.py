"""Tables of the prompts schema."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID
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
