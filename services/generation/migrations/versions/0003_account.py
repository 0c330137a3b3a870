"""The user's own data: erasure rounds and export parts still being worked on (each row its
own background job, see visiona.generation.account).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from alembic import op

from visiona.kit.migrations import enable_user_rls

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SCHEMA = "generation"

TABLES = f"""
-- One row per erasure round asked for and not yet answered; deleted with the answer.
CREATE TABLE "{SCHEMA}".erasures (
    id uuid PRIMARY KEY,
    user_id text NOT NULL,
    deletion_id uuid NOT NULL,
    round integer NOT NULL CONSTRAINT erasure_round CHECK (round >= 1),
    -- What this round removed so far (rows, objects, provider cancels), kept across restarts.
    removed integer NOT NULL DEFAULT 0,
    work text CONSTRAINT erasure_work CHECK (work IN ('purge')),
    work_after timestamptz,
    work_attempts integer NOT NULL DEFAULT 0,
    lease_until timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT one_erasure_per_round UNIQUE (deletion_id, round)
);
CREATE INDEX erasures_work_due ON "{SCHEMA}".erasures (work_after) WHERE work IS NOT NULL;

-- One row per export part being written (id = the export's id); deleted with the answer.
CREATE TABLE "{SCHEMA}".exports (
    id uuid PRIMARY KEY,
    user_id text NOT NULL,
    work text CONSTRAINT export_work CHECK (work IN ('export')),
    work_after timestamptz,
    work_attempts integer NOT NULL DEFAULT 0,
    lease_until timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX exports_work_due ON "{SCHEMA}".exports (work_after) WHERE work IS NOT NULL;
CREATE INDEX exports_by_user ON "{SCHEMA}".exports (user_id);
CREATE INDEX erasures_by_user ON "{SCHEMA}".erasures (user_id);
-- Erasure finds the webhooks of the user's predictions.
CREATE INDEX replicate_webhooks_by_provider ON "{SCHEMA}".replicate_webhooks (provider_id);
"""


def upgrade() -> None:
    op.execute(TABLES)
    # The workers find due rows before they know whose they are (system_read).
    enable_user_rls(SCHEMA, "erasures", system_read=True)
    enable_user_rls(SCHEMA, "exports", system_read=True)


def downgrade() -> None:
    op.execute(f'DROP INDEX "{SCHEMA}".replicate_webhooks_by_provider')
    op.execute(f'DROP TABLE "{SCHEMA}".exports, "{SCHEMA}".erasures')
