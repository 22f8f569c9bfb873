"""import: a content hash per imported resource in fhir_import_id_map

`codoc-fhir import` compares it with the resource it reads again (an edited file): the
same hash is skipped, another one is written over our resource as its next version.
Rows of earlier imports have none (NULL): they are skipped as before.

Revision ID: 0009_import
Revises: 0007_kept
Create Date: 2026-12-02 05:15:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_import"
down_revision = "0007_kept"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("fhir_import_id_map") as batch:
        batch.add_column(sa.Column("content_hash", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("fhir_import_id_map") as batch:
        batch.drop_column("content_hash")
