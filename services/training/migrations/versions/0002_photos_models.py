"""Photos, models (with their training) and received Replicate webhooks.

A model row is also its job: ``work`` names the next background step (launch, poll, finalize,
cancel, purge), ``work_after`` when it is due and ``lease_until`` who holds it, so a crash
anywhere leaves a row that another worker (or the restarted one) picks up.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from alembic import op

from visiona.kit.migrations import enable_user_rls

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = "training"

TABLES = f"""
CREATE TABLE "{SCHEMA}".photos (
    id uuid PRIMARY KEY,
    user_id text NOT NULL,
    status text NOT NULL CONSTRAINT photo_status CHECK (
        status IN ('uploading', 'accepted', 'accepted_with_warnings', 'rejected')),
    require_one_face boolean NOT NULL DEFAULT true,
    declared_type text NOT NULL,
    upload_key text NOT NULL,
    upload_expires_at timestamptz NOT NULL,
    object_key text,
    content_type text,
    size_bytes bigint,
    width integer,
    height integer,
    faces integer,
    blur_score double precision,
    phash text,
    reasons text[] NOT NULL DEFAULT '{{}}',
    created_at timestamptz NOT NULL DEFAULT now(),
    validated_at timestamptz
);
CREATE INDEX photos_by_user ON "{SCHEMA}".photos (user_id, created_at DESC, id DESC);
CREATE INDEX photos_abandoned ON "{SCHEMA}".photos (upload_expires_at)
    WHERE status = 'uploading';

CREATE TABLE "{SCHEMA}".models (
    id uuid PRIMARY KEY,
    user_id text NOT NULL,
    name text NOT NULL CONSTRAINT name_length CHECK (char_length(name) BETWEEN 1 AND 80),
    status text NOT NULL CONSTRAINT model_status CHECK (status IN (
        'awaiting_credits', 'preparing', 'queued', 'training', 'succeeded', 'failed',
        'canceled')),
    preset text NOT NULL,
    trigger_word text NOT NULL,
    training_id uuid NOT NULL UNIQUE,
    photo_ids uuid[] NOT NULL,
    hold_id uuid,
    dataset_key text,
    provider_model text,
    provider_training_id text UNIQUE,
    provider_status text,
    launch_attempted_at timestamptz,
    weights_url text,
    weights_key text,
    version text,
    progress real NOT NULL DEFAULT 0,
    failure_reason text,
    failure_message text,
    work text CONSTRAINT model_work CHECK (
        work IN ('launch', 'poll', 'finalize', 'cancel', 'purge')),
    work_after timestamptz,
    work_attempts integer NOT NULL DEFAULT 0,
    lease_until timestamptz,
    provider_seen_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    queued_at timestamptz,
    started_at timestamptz,
    finished_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
);
CREATE INDEX models_by_user ON "{SCHEMA}".models (user_id, created_at DESC, id DESC)
    WHERE deleted_at IS NULL;
CREATE INDEX models_work_due ON "{SCHEMA}".models (work_after) WHERE work IS NOT NULL;

-- Replicate deliveries seen, by webhook-id (a retry carries the same id). No personal data.
CREATE TABLE "{SCHEMA}".replicate_webhooks (
    webhook_id text PRIMARY KEY,
    provider_id text NOT NULL,
    status text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX replicate_webhooks_received ON "{SCHEMA}".replicate_webhooks (received_at);
"""


def upgrade() -> None:
    op.execute(TABLES)
    # The system principal finds due work, abandoned uploads and a webhook's model by reading;
    # it writes as the owner.
    enable_user_rls(SCHEMA, "photos", system_read=True)
    enable_user_rls(SCHEMA, "models", system_read=True)


def downgrade() -> None:
    op.execute(f'DROP TABLE "{SCHEMA}".replicate_webhooks, "{SCHEMA}".models, "{SCHEMA}".photos')
