"""The Stripe customers an account had before its current one.

A customer Stripe no longer has (deleted in the dashboard, created with the other mode's
keys, a restored backup) is replaced by a new one (``BillingService``). Its id is kept here,
so the webhooks still to come about it (``customer.subscription.deleted`` of the deletion, a
late refund of one of its charges) still find their user, and an erasure still finds the
stored events that name it. The row goes with the account on erasure.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SCHEMA = "billing"


def upgrade() -> None:
    op.execute(
        f"""
        ALTER TABLE "{SCHEMA}".accounts
            ADD COLUMN replaced_stripe_customer_ids text[] NOT NULL DEFAULT '{{}}';
        CREATE INDEX accounts_replaced_stripe_customer_ids ON "{SCHEMA}".accounts
            USING gin (replaced_stripe_customer_ids);
        """
    )


def downgrade() -> None:
    op.execute(
        f"""
        DROP INDEX "{SCHEMA}".accounts_replaced_stripe_customer_ids;
        ALTER TABLE "{SCHEMA}".accounts DROP COLUMN replaced_stripe_customer_ids;
        """
    )
