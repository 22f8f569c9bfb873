"""server secret (the key of paging cursors, shared by every worker)

Revision ID: 0004_server_secret
Revises: 0003
Create Date: 2026-12-01 22:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_server_secret"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fhir_server_secret",
        sa.Column("secret_name", sa.String(length=50), nullable=False),
        sa.Column("secret_value", sa.String(length=200), nullable=False),
        sa.Column("create_date", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("secret_name"),
    )


def downgrade() -> None:
    op.drop_table("fhir_server_secret")
