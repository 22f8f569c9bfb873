"""research warehouse: built-in phenotype extraction

Revision ID: 0006_research
Revises: 0003
Create Date: 2026-12-01 22:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_research"
down_revision = "0003"
branch_labels = None
depends_on = None

KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("dwh_enrsem", schema=None) as batch_op:
        batch_op.add_column(sa.Column("extracted", sa.Boolean(), nullable=True))
    op.create_table(
        "dwh_enrsem_extraction",
        sa.Column("document_num", KEY, nullable=False),
        sa.Column("thesaurus_code", sa.String(length=40), nullable=False),
        sa.Column("text_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("extract_date", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_num"], ["dwh_document.document_num"], ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("document_num", "thesaurus_code"),
    )


def downgrade() -> None:
    op.drop_table("dwh_enrsem_extraction")
    with op.batch_alter_table("dwh_enrsem", schema=None) as batch_op:
        batch_op.drop_column("extracted")
