"""When a finished generation's folder in S3 was last made to hold only what its rows name.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SCHEMA = "generation"


def upgrade() -> None:
    op.execute(
        f"""
ALTER TABLE "{SCHEMA}".generations ADD COLUMN objects_swept_at timestamptz;
-- Finished generations not yet swept, oldest first.
CREATE INDEX generations_unswept ON "{SCHEMA}".generations (finished_at)
    WHERE objects_swept_at IS NULL AND finished_at IS NOT NULL;
"""
    )


def downgrade() -> None:
    op.execute(
        f"""
DROP INDEX "{SCHEMA}".generations_unswept;
ALTER TABLE "{SCHEMA}".generations DROP COLUMN objects_swept_at;
"""
    )
