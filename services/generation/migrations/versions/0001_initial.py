"""Outbox and inbox; the generation tables arrive with their issue.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from alembic import op

from visiona.kit.migrations import create_outbox_and_inbox

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "generation"


def upgrade() -> None:
    create_outbox_and_inbox(SCHEMA)


def downgrade() -> None:
    op.execute(f'DROP TABLE "{SCHEMA}".inbox, "{SCHEMA}".outbox')
    op.execute(f'DROP FUNCTION "{SCHEMA}".outbox_notify()')
