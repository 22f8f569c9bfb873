"""open encounters: dwh_patient_stay.entry_date and dwh_patient_mvt.entry_date nullable

Valid R4B Encounters need no period (a planned encounter, the official examples): they
are stored with an empty entry date instead of being refused (CONTRACT section 9).

Revision ID: 0010_open_encounters
Revises: 0009_import
Create Date: 2026-12-02 06:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_open_encounters"
down_revision = "0009_import"
branch_labels = None
depends_on = None

TABLES = ("dwh_patient_stay", "dwh_patient_mvt")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.alter_column("entry_date", existing_type=TIMESTAMP, nullable=True)


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.alter_column("entry_date", existing_type=TIMESTAMP, nullable=False)
