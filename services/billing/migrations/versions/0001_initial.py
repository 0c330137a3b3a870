"""Usage records, outbox and inbox.

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

SCHEMA = "billing"


def upgrade() -> None:
    create_outbox_and_inbox(SCHEMA)
    op.create_table(
        "usage_records",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("source_event_id", UUID(as_uuid=True), nullable=False, unique=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("quantity", sa.BigInteger, nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint("quantity >= 0", name="usage_quantity_non_negative"),
        schema=SCHEMA,
    )
    op.create_index("usage_records_user_kind", "usage_records", ["user_id", "kind"], schema=SCHEMA)
    enable_user_rls(SCHEMA, "usage_records")


def downgrade() -> None:
    op.drop_table("usage_records", schema=SCHEMA)
    op.execute(f'DROP TABLE "{SCHEMA}".inbox, "{SCHEMA}".outbox')
    op.execute(f'DROP FUNCTION "{SCHEMA}".outbox_notify()')
