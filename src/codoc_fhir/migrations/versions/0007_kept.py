"""kept elements: fhir_kept on every table the API writes, fhir_token for their codes

A resource's elements that no warehouse column holds are kept as JSON beside its row
(fhir_kept) and answered unchanged; the codings and identifiers inside them are indexed in
fhir_token so a token search finds a resource by any code it carries.

Revision ID: 0007_kept
Revises: 0006_research
Create Date: 2026-12-02 05:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_kept"
down_revision = "0006_research"
branch_labels = None
depends_on = None

KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TOKEN_LENGTH = 255

WRITTEN_TABLES = (
    "hospital_instance",
    "dwh_thesaurus_site",
    "dwh_thesaurus_department",
    "dwh_thesaurus_unit",
    "dwh_patient",
    "dwh_patient_stay",
    "dwh_patient_mvt",
    "dwh_document",
    "dwh_thesaurus",
    "dwh_thesaurus_data",
    "dwh_data",
    "dwh_enrsem",
    "dwh_cohort",
    "dwh_patient_data",
)


def upgrade() -> None:
    for table in WRITTEN_TABLES:
        op.add_column(table, sa.Column("fhir_kept", sa.Text()))
    op.create_table(
        "fhir_token",
        sa.Column("table_name", sa.String(64), nullable=False),
        sa.Column("row_num", KEY, nullable=False),
        sa.Column("element", sa.String(64), nullable=False),
        sa.Column("system", sa.String(TOKEN_LENGTH)),
        sa.Column("code", sa.String(TOKEN_LENGTH), nullable=False),
    )
    op.create_index("ix_fhir_token_code", "fhir_token", ["table_name", "element", "code"])
    op.create_index("ix_fhir_token_row", "fhir_token", ["table_name", "row_num"])


def downgrade() -> None:
    op.drop_table("fhir_token")
    for table in WRITTEN_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("fhir_kept")
