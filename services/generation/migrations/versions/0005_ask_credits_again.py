"""A generation awaiting credits is its own reminder: ``work = 'ask_credits'`` asks billing
again while no answer came (visiona.generation.jobs). Generations already waiting get it too.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SCHEMA = "generation"


def upgrade() -> None:
    op.execute(
        f"""
        ALTER TABLE "{SCHEMA}".generations DROP CONSTRAINT generation_work;
        ALTER TABLE "{SCHEMA}".generations ADD CONSTRAINT generation_work
            CHECK (work IN ('ask_credits', 'launch', 'poll', 'ingest', 'cancel'));
        -- Every user's rows, once, by the owner: row-level security is lifted for this
        -- transaction only.
        ALTER TABLE "{SCHEMA}".generations NO FORCE ROW LEVEL SECURITY;
        UPDATE "{SCHEMA}".generations SET work = 'ask_credits', work_after = now()
            WHERE status = 'awaiting_credits' AND work IS NULL;
        ALTER TABLE "{SCHEMA}".generations FORCE ROW LEVEL SECURITY;
        """
    )


def downgrade() -> None:
    op.execute(
        f"""
        ALTER TABLE "{SCHEMA}".generations NO FORCE ROW LEVEL SECURITY;
        UPDATE "{SCHEMA}".generations SET work = NULL, work_after = NULL
            WHERE work = 'ask_credits';
        ALTER TABLE "{SCHEMA}".generations FORCE ROW LEVEL SECURITY;
        ALTER TABLE "{SCHEMA}".generations DROP CONSTRAINT generation_work;
        ALTER TABLE "{SCHEMA}".generations ADD CONSTRAINT generation_work
            CHECK (work IN ('launch', 'poll', 'ingest', 'cancel'));
        """
    )
