"""Object keys name an opaque owner key, not the user id (visiona.kit.owners): the
``storage_owners`` table, and a ``legacy`` owner for every user with generations from before,
whose images the legacy-keys job moves.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from alembic import op

from visiona.kit.owners import owners_ddl

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

SCHEMA = "generation"


def upgrade() -> None:
    op.execute(owners_ddl(SCHEMA, ["generations"]))


def downgrade() -> None:
    op.execute(f'DROP TABLE "{SCHEMA}".storage_owners')
