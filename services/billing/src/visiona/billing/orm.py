"""Tables of the billing schema."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA = "billing"


class Base(DeclarativeBase):
    metadata = sa.MetaData(schema=SCHEMA)


class UsageRecordRow(Base):
    """One billable use of the platform, recorded from another service's event.

    User-owned (row-level security on user_id). ``source_event_id`` is unique: an event is
    recorded once even if the inbox were bypassed.
    """

    __tablename__ = "usage_records"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    user_id: Mapped[str] = mapped_column(sa.Text)
    source_event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), unique=True)
    kind: Mapped[str] = mapped_column(sa.Text)
    quantity: Mapped[int] = mapped_column(sa.BigInteger)
    occurred_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    recorded_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now()
    )
