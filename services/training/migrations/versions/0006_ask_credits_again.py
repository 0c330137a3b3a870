"""A model awaiting credits is its own reminder: ``work = 'ask_credits'`` asks billing again
while no answer came (visiona.training.jobs). Models already waiting get it too.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SCHEMA = "training"


def upgrade() -> None:
    op.execute(
        f"""
        ALTER TABLE "{SCHEMA}".models DROP CONSTRAINT model_work;
        ALTER TABLE "{SCHEMA}".models ADD CONSTRAINT model_work CHECK (
            work IN ('ask_credits', 'launch', 'poll', 'finalize', 'cancel', 'purge'));
        -- Every user's rows, once, by the owner: row-level security is lifted for this
        -- transaction only.
        ALTER TABLE "{SCHEMA}".models NO FORCE ROW LEVEL SECURITY;
        UPDATE "{SCHEMA}".models SET work = 'ask_credits', work_after = now()
            WHERE status = 'awaiting_credits' AND work IS NULL;
        ALTER TABLE "{SCHEMA}".models FORCE ROW LEVEL SECURITY;
        """
    )


def downgrade() -> None:
    op.execute(
        f"""
        ALTER TABLE "{SCHEMA}".models NO FORCE ROW LEVEL SECURITY;
        UPDATE "{SCHEMA}".models SET work = NULL, work_after = NULL WHERE work = 'ask_credits';
        ALTER TABLE "{SCHEMA}".models FORCE ROW LEVEL SECURITY;
        ALTER TABLE "{SCHEMA}".models DROP CONSTRAINT model_work;
        ALTER TABLE "{SCHEMA}".models ADD CONSTRAINT model_work CHECK (
            work IN ('launch', 'poll', 'finalize', 'cancel', 'purge'));
        """
    )
