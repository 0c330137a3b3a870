"""The user's own data: erasure rounds and export parts, each a row that is its own job.

``erasures``: one row per (deletion, round) being carried out; ``work`` is ``take`` (hand
the models to the purge, delete photos and export parts) then ``finish`` (wait for the
purges, delete the user's objects, answer). The row goes in the transaction that answers:
afterwards nothing here names the user.

``erasure_answers``: the answer given to each round, by deletion id (no user), so a repeated
request for a round answered already gets the same answer. Dropped after a while.

``exports``: one row per export part being written (``work`` = ``export``), deleted in the
transaction that reports the part done.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from alembic import op

from visiona.kit.migrations import enable_user_rls

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SCHEMA = "training"

TABLES = f"""
CREATE TABLE "{SCHEMA}".erasures (
    id uuid PRIMARY KEY,
    deletion_id uuid NOT NULL,
    round integer NOT NULL CONSTRAINT erasure_round CHECK (round >= 1),
    user_id text NOT NULL,
    removed integer NOT NULL DEFAULT 0,
    provider_training_ids text[] NOT NULL DEFAULT '{{}}',
    requested_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    work text CONSTRAINT erasure_work CHECK (work IN ('take', 'finish')),
    work_after timestamptz,
    work_attempts integer NOT NULL DEFAULT 0,
    lease_until timestamptz,
    CONSTRAINT erasure_once UNIQUE (deletion_id, round)
);
CREATE INDEX erasures_work_due ON "{SCHEMA}".erasures (work_after) WHERE work IS NOT NULL;
CREATE INDEX erasures_by_user ON "{SCHEMA}".erasures (user_id);

CREATE TABLE "{SCHEMA}".erasure_answers (
    deletion_id uuid NOT NULL,
    round integer NOT NULL,
    removed integer NOT NULL,
    answered_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (deletion_id, round)
);
CREATE INDEX erasure_answers_answered ON "{SCHEMA}".erasure_answers (answered_at);

CREATE TABLE "{SCHEMA}".exports (
    id uuid PRIMARY KEY,
    export_id uuid NOT NULL UNIQUE,
    user_id text NOT NULL,
    requested_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    work text CONSTRAINT export_work CHECK (work IN ('export')),
    work_after timestamptz,
    work_attempts integer NOT NULL DEFAULT 0,
    lease_until timestamptz
);
CREATE INDEX exports_work_due ON "{SCHEMA}".exports (work_after) WHERE work IS NOT NULL;
CREATE INDEX exports_by_user ON "{SCHEMA}".exports (user_id);
"""


def upgrade() -> None:
    op.execute(TABLES)
    # The workers find due rows as the system principal (read only), then act as the owner.
    enable_user_rls(SCHEMA, "erasures", system_read=True)
    enable_user_rls(SCHEMA, "exports", system_read=True)


def downgrade() -> None:
    op.execute(f'DROP TABLE "{SCHEMA}".exports, "{SCHEMA}".erasure_answers, "{SCHEMA}".erasures')
