"""The gateway's own schema: accounts (Clerk), erasure and export requests, outbox and inbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from visiona.kit.migrations import create_outbox_and_inbox, enable_user_rls

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "gateway"


def _now() -> sa.Column[object]:
    return sa.func.now()  # type: ignore[return-value]


def _work_columns() -> list[sa.Column[object]]:
    """The row-as-job columns of visiona.kit.jobs.RowJobs."""
    return [
        sa.Column("work", sa.Text),
        sa.Column("work_after", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("work_attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("lease_until", sa.DateTime(timezone=True)),
    ]


def upgrade() -> None:
    create_outbox_and_inbox(SCHEMA)

    # Who the user is, as Clerk's user.created / user.updated webhooks say.
    op.create_table(
        "accounts",
        sa.Column("user_id", sa.Text, primary_key=True),
        sa.Column("email", sa.Text),
        sa.Column("first_name", sa.Text),
        sa.Column("last_name", sa.Text),
        sa.Column("image_url", sa.Text),
        # Clerk's updated_at (ms): an older webhook delivered late never overwrites a newer one.
        sa.Column("clerk_updated_at", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        schema=SCHEMA,
    )
    enable_user_rls(SCHEMA, "accounts", system_read=True)

    # Svix deliveries already applied (svix-id), so a redelivery is answered and ignored.
    op.create_table(
        "clerk_webhooks",
        sa.Column("svix_id", sa.Text, primary_key=True),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        schema=SCHEMA,
    )

    # An erasure in progress (one per user). Its row goes when the erasure completes, and a
    # receipt without the user id stays (deletion_receipts).
    op.create_table(
        "deletions",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("user_id", sa.Text, nullable=False, unique=True),
        sa.Column("subject", sa.Text, nullable=False, unique=True),
        sa.Column("source", sa.Text, nullable=False),  # api | clerk
        sa.Column("status", sa.Text, nullable=False),  # scheduled | erasing | finishing
        sa.Column("round", sa.Integer, nullable=False, server_default="0"),
        sa.Column("answers", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("removed", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("clerk_user_deleted", sa.Boolean, nullable=False, server_default="false"),
        sa.Column(
            "requested_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()
        ),
        sa.Column("round_started_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        *_work_columns(),
        schema=SCHEMA,
    )
    op.create_index(
        "deletions_due",
        "deletions",
        ["work_after"],
        schema=SCHEMA,
        postgresql_where=sa.text("work IS NOT NULL"),
    )
    enable_user_rls(SCHEMA, "deletions", system_read=True)

    # Proof that an erasure happened, keyed by a keyed hash of the user id (the user can ask
    # GET /v1/me/deletion afterwards; nobody can go from a receipt back to a user id).
    op.create_table(
        "deletion_receipts",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("subject", sa.Text, nullable=False, unique=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("rounds", sa.Integer, nullable=False),
        sa.Column("removed", sa.BigInteger, nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "completed_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()
        ),
        schema=SCHEMA,
    )

    op.create_table(
        "exports",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column(
            "status", sa.Text, nullable=False
        ),  # collecting | assembling | ready | failed | expired
        sa.Column("parts", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("archive_key", sa.Text),
        sa.Column("bytes", sa.BigInteger),
        sa.Column("error", sa.Text),
        sa.Column(
            "requested_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()
        ),
        sa.Column("ready_at", sa.DateTime(timezone=True)),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        *_work_columns(),
        schema=SCHEMA,
    )
    op.create_index("exports_user_requested", "exports", ["user_id", "requested_at"], schema=SCHEMA)
    op.create_index(
        "exports_due",
        "exports",
        ["work_after"],
        schema=SCHEMA,
        postgresql_where=sa.text("work IS NOT NULL"),
    )
    enable_user_rls(SCHEMA, "exports", system_read=True)


def downgrade() -> None:
    for table in ("exports", "deletion_receipts", "deletions", "clerk_webhooks", "accounts"):
        op.drop_table(table, schema=SCHEMA)
    op.execute(f'DROP TABLE "{SCHEMA}".inbox, "{SCHEMA}".outbox')
    op.execute(f'DROP FUNCTION "{SCHEMA}".outbox_notify()')
