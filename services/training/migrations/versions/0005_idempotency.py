"""End-to-end idempotency (ADR 0009): a model remembers the Idempotency-Key it was made
with (scoped by the gateway to the user and the operation) and the fingerprint of that
request, unique per user, so a retry finds it instead of training and charging a second one.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SCHEMA = "training"


def upgrade() -> None:
    op.execute(
        f"""
        ALTER TABLE "{SCHEMA}".models
            ADD COLUMN idempotency_key text,
            ADD COLUMN request_fingerprint bytea,
            ADD CONSTRAINT models_idempotency_key UNIQUE (user_id, idempotency_key),
            ADD CONSTRAINT models_idempotency_fingerprint
                CHECK ((idempotency_key IS NULL) = (request_fingerprint IS NULL));
        """
    )


def downgrade() -> None:
    op.execute(
        f"""
        ALTER TABLE "{SCHEMA}".models
            DROP COLUMN request_fingerprint,
            DROP COLUMN idempotency_key;
        """
    )
