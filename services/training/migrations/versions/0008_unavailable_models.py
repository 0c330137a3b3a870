"""A ready model whose trained version the provider no longer has becomes ``unavailable``;
ready models check their version now and then (``work = 'verify'``, visiona.training.jobs),
those already ready at once.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

SCHEMA = "training"


def upgrade() -> None:
    op.execute(
        f"""
        ALTER TABLE "{SCHEMA}".models DROP CONSTRAINT model_status;
        ALTER TABLE "{SCHEMA}".models ADD CONSTRAINT model_status CHECK (status IN (
            'awaiting_credits', 'preparing', 'queued', 'training', 'succeeded', 'failed',
            'canceled', 'unavailable'));
        ALTER TABLE "{SCHEMA}".models DROP CONSTRAINT model_work;
        ALTER TABLE "{SCHEMA}".models ADD CONSTRAINT model_work CHECK (
            work IN ('ask_credits', 'launch', 'poll', 'finalize', 'cancel', 'purge', 'verify'));
        -- Every user's rows, once, by the owner: row-level security is lifted for this
        -- transaction only.
        ALTER TABLE "{SCHEMA}".models NO FORCE ROW LEVEL SECURITY;
        UPDATE "{SCHEMA}".models SET work = 'verify', work_after = now(), work_attempts = 0
            WHERE status = 'succeeded' AND work IS NULL AND deleted_at IS NULL;
        ALTER TABLE "{SCHEMA}".models FORCE ROW LEVEL SECURITY;
        """
    )


def downgrade() -> None:
    op.execute(
        f"""
        ALTER TABLE "{SCHEMA}".models NO FORCE ROW LEVEL SECURITY;
        UPDATE "{SCHEMA}".models SET work = NULL, work_after = NULL WHERE work = 'verify';
        UPDATE "{SCHEMA}".models SET status = 'succeeded' WHERE status = 'unavailable';
        ALTER TABLE "{SCHEMA}".models FORCE ROW LEVEL SECURITY;
        ALTER TABLE "{SCHEMA}".models DROP CONSTRAINT model_work;
        ALTER TABLE "{SCHEMA}".models ADD CONSTRAINT model_work CHECK (
            work IN ('ask_credits', 'launch', 'poll', 'finalize', 'cancel', 'purge'));
        ALTER TABLE "{SCHEMA}".models DROP CONSTRAINT model_status;
        ALTER TABLE "{SCHEMA}".models ADD CONSTRAINT model_status CHECK (status IN (
            'awaiting_credits', 'preparing', 'queued', 'training', 'succeeded', 'failed',
            'canceled'));
        """
    )
