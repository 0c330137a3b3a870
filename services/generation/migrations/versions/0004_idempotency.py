"""End-to-end idempotency (ADR 0009): a generation remembers the Idempotency-Key it was made
with (scoped by the gateway to the user and the operation) and the fingerprint of that
request, unique per user, so a retry finds it instead of making and charging a second one.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SCHEMA = "generation"


def upgrade() -> None:
    op.execute(
        f"""
        ALTER TABLE "{SCHEMA}".generations
            ADD COLUMN idempotency_key text,
            ADD COLUMN request_fingerprint bytea,
            ADD CONSTRAINT generations_idempotency_key UNIQUE (user_id, idempotency_key),
            ADD CONSTRAINT generations_idempotency_fingerprint
                CHECK ((idempotency_key IS NULL) = (request_fingerprint IS NULL));
        """
    )


def downgrade() -> None:
    op.execute(
        f"""
        ALTER TABLE "{SCHEMA}".generations
            DROP COLUMN request_fingerprint,
            DROP COLUMN idempotency_key;
        """
    )
