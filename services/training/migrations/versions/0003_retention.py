"""Retention of training photos and datasets (ADR 0007).

``models.dataset_purged_at`` records that the retention sweep deleted the model's dataset zip,
so each model is swept once. ``finished_at`` (set by every final transition) is when its
training ended. The indexes serve the sweep: models whose dataset is due by end time, photos
by age, and "which models used this photo" (``photo_ids @> ARRAY[id]``).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SCHEMA = "training"


def upgrade() -> None:
    op.execute(
        f"""
        ALTER TABLE "{SCHEMA}".models ADD COLUMN dataset_purged_at timestamptz;
        CREATE INDEX models_dataset_retention ON "{SCHEMA}".models (finished_at, id)
            WHERE dataset_purged_at IS NULL AND finished_at IS NOT NULL AND deleted_at IS NULL;
        CREATE INDEX models_by_photo ON "{SCHEMA}".models USING gin (photo_ids);
        CREATE INDEX photos_by_age ON "{SCHEMA}".photos (created_at, id);
        """
    )


def downgrade() -> None:
    op.execute(
        f"""
        DROP INDEX "{SCHEMA}".photos_by_age;
        DROP INDEX "{SCHEMA}".models_by_photo;
        DROP INDEX "{SCHEMA}".models_dataset_retention;
        ALTER TABLE "{SCHEMA}".models DROP COLUMN dataset_purged_at;
        """
    )
