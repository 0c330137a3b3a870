"""End-to-end idempotency of checkout (ADR 0009): a Checkout Session remembers the
Idempotency-Key it was opened with (scoped by the gateway to the user and the operation), the
fingerprint of that request, and what its answer held (the hosted page's URL and when it
expires), so a retry gets the same session, never a second one.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SCHEMA = "billing"


def upgrade() -> None:
    op.execute(
        f"""
        ALTER TABLE "{SCHEMA}".checkout_sessions
            ADD COLUMN idempotency_key text,
            ADD COLUMN request_fingerprint bytea,
            ADD COLUMN url text,
            ADD COLUMN expires_at timestamptz,
            ADD CONSTRAINT checkout_sessions_idempotency_key UNIQUE (user_id, idempotency_key),
            ADD CONSTRAINT checkout_sessions_idempotency_fingerprint
                CHECK ((idempotency_key IS NULL) = (request_fingerprint IS NULL));
        """
    )


def downgrade() -> None:
    op.execute(
        f"""
        ALTER TABLE "{SCHEMA}".checkout_sessions
            DROP COLUMN expires_at,
            DROP COLUMN url,
            DROP COLUMN request_fingerprint,
            DROP COLUMN idempotency_key;
        """
    )
