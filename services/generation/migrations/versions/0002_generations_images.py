"""Generations (each also its own background job), images, and received Replicate webhooks.

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

SCHEMA = "generation"

TABLES = f"""
CREATE TABLE "{SCHEMA}".generations (
    id uuid PRIMARY KEY,
    user_id text NOT NULL,
    model_id uuid NOT NULL,
    version text NOT NULL,
    prompt text NOT NULL,
    final_prompt text NOT NULL,
    enhanced boolean NOT NULL DEFAULT false,
    degraded boolean NOT NULL DEFAULT false,
    enhancement_reason text,
    style_pack text,
    num_outputs integer NOT NULL CONSTRAINT num_outputs_range CHECK (num_outputs BETWEEN 1 AND 4),
    aspect_ratio text NOT NULL,
    seed bigint,
    lora_scale double precision NOT NULL,
    output_format text NOT NULL,
    status text NOT NULL CONSTRAINT generation_status CHECK (status IN (
        'awaiting_credits', 'queued', 'running', 'succeeded', 'failed', 'canceled')),
    hold_id uuid,
    provider_prediction_id text UNIQUE,
    provider_status text,
    launch_attempted_at timestamptz,
    output_urls text[] NOT NULL DEFAULT '{{}}',
    delivered integer NOT NULL DEFAULT 0,
    failure_reason text,
    failure_message text,
    work text CONSTRAINT generation_work CHECK (work IN ('launch', 'poll', 'ingest', 'cancel')),
    work_after timestamptz,
    work_attempts integer NOT NULL DEFAULT 0,
    lease_until timestamptz,
    provider_seen_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX generations_by_user ON "{SCHEMA}".generations (user_id, created_at DESC, id DESC);
CREATE INDEX generations_work_due ON "{SCHEMA}".generations (work_after) WHERE work IS NOT NULL;

CREATE TABLE "{SCHEMA}".images (
    id uuid PRIMARY KEY,
    user_id text NOT NULL,
    generation_id uuid NOT NULL,
    model_id uuid NOT NULL,
    idx integer NOT NULL,
    object_key text NOT NULL,
    thumbnail_key text NOT NULL,
    content_type text NOT NULL,
    width integer NOT NULL,
    height integer NOT NULL,
    size_bytes bigint NOT NULL,
    blurhash text NOT NULL,
    favourite boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT one_image_per_output UNIQUE (generation_id, idx)
);
CREATE INDEX images_by_user ON "{SCHEMA}".images (user_id, created_at DESC, id DESC);

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
    enable_user_rls(SCHEMA, "generations", system_read=True)
    enable_user_rls(SCHEMA, "images")


def downgrade() -> None:
    op.execute(
        f'DROP TABLE "{SCHEMA}".replicate_webhooks, "{SCHEMA}".images, "{SCHEMA}".generations'
    )
