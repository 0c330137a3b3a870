"""Enhancements, outbox and inbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

from visiona.kit.migrations import create_outbox_and_inbox, enable_user_rls

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "prompts"


def upgrade() -> None:
    create_outbox_and_inbox(SCHEMA)
    op.create_table(
        "enhancements",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("prompt", sa.Text, nullable=False),
        sa.Column("enhanced_prompt", sa.Text, nullable=False),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("input_tokens", sa.Integer, nullable=False),
        sa.Column("output_tokens", sa.Integer, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "enhancements_user_created", "enhancements", ["user_id", "created_at"], schema=SCHEMA
    )
    enable_user_rls(SCHEMA, "enhancements")


def downgrade() -> None:
    op.drop_table("enhancements", schema=SCHEMA)
    op.execute(f'DROP TABLE "{SCHEMA}".inbox, "{SCHEMA}".outbox')
    op.execute(f'DROP FUNCTION "{SCHEMA}".outbox_notify()')
