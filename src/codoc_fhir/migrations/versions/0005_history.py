"""resource history; concept designations; SQLite keys never reused

Revision ID: 0005_history
Revises: 0003
Create Date: 2026-12-01 21:50:00

Three changes:

- `dwh_resource_history`: one row per version of every resource the API writes;
- `dwh_thesaurus_data.designation_json` / `designation_text`: concept synonyms;
- on SQLite, every table with a server-assigned integer key is recreated with
  AUTOINCREMENT, so that the key of a deleted row is never handed out again (SQLite
  otherwise reuses max(rowid)+1). PostgreSQL identities never go back: nothing to do there.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_history"
down_revision = "0004_server_secret"
branch_labels = None
depends_on = None

# The tables whose single integer primary key the server assigns, as of this revision.
KEYED_TABLES = (
    "hospital_instance",
    "dwh_thesaurus_site",
    "dwh_thesaurus_department",
    "dwh_thesaurus_unit",
    "dwh_patient",
    "dwh_patient_ipphist",
    "dwh_patient_stay",
    "dwh_patient_mvt",
    "dwh_document",
    "dwh_document_author",
    "dwh_thesaurus",
    "dwh_thesaurus_data",
    "dwh_data",
    "dwh_enrsem",
    "dwh_patient_data",
    "fhir_access_log",
    "fhir_export_job",
)

Key = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "dwh_resource_history",
        sa.Column("history_num", Key, primary_key=True, autoincrement=True),
        sa.Column("fhir_type", sa.String(40), nullable=False),
        sa.Column("fhir_id", sa.String(64), nullable=False),
        sa.Column("table_name", sa.String(64), nullable=False),
        sa.Column("table_key", Key, nullable=False),
        sa.Column("patient_num", Key),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(10), nullable=False),
        sa.Column("history_date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resource_json", sa.Text()),
        sa.PrimaryKeyConstraint("history_num", name="pk_dwh_resource_history"),
        sa.UniqueConstraint(
            "fhir_type",
            "fhir_id",
            "version_id",
            name="uq_dwh_resource_history_fhir_type_fhir_id_version_id",
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_dwh_resource_history_date", "dwh_resource_history", ["history_date"])
    op.create_index(
        "ix_dwh_resource_history_type_date", "dwh_resource_history", ["fhir_type", "history_date"]
    )
    op.create_index(
        "ix_dwh_resource_history_patient", "dwh_resource_history", ["patient_num", "history_date"]
    )
    op.add_column("dwh_thesaurus_data", sa.Column("designation_json", sa.Text()))
    op.add_column("dwh_thesaurus_data", sa.Column("designation_text", sa.String(4000)))
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_autoincrement()


def _sqlite_autoincrement() -> None:
    """Recreate the keyed tables with AUTOINCREMENT (Alembic batch mode copies the rows).

    Dropping a parent table while foreign keys are enforced would fail or cascade, so they
    are off for the copy (Alembic runs each SQLite migration in its own transaction, and
    the pragma is honoured at its start) and the result is checked before the end.
    """
    bind = op.get_bind()
    bind.exec_driver_sql("PRAGMA foreign_keys=OFF")
    for name in KEYED_TABLES:
        with op.batch_alter_table(
            name, recreate="always", table_kwargs={"sqlite_autoincrement": True}
        ):
            pass
    broken = bind.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(f"Foreign keys broken by the table copy: {broken[:5]}")
    bind.exec_driver_sql("PRAGMA foreign_keys=ON")


def downgrade() -> None:
    with op.batch_alter_table("dwh_thesaurus_data") as batch:
        batch.drop_column("designation_text")
        batch.drop_column("designation_json")
    op.drop_index("ix_dwh_resource_history_patient", table_name="dwh_resource_history")
    op.drop_index("ix_dwh_resource_history_type_date", table_name="dwh_resource_history")
    op.drop_index("ix_dwh_resource_history_date", table_name="dwh_resource_history")
    op.drop_table("dwh_resource_history")
