"""every other R4B resource type: fhir_resource and its search index fhir_search_value

Revision ID: 0008_generic
Revises: 0007_kept
Create Date: 2026-12-02 05:10:00

`fhir_resource` keeps a resource of a type without warehouse tables (Practitioner,
Immunization, Claim...) whole, as sent without id and meta; `fhir_search_value` holds one
row per value its R4B search parameters extract, in typed columns, indexed per parameter.
`fhir_export_job.resource_types` becomes TEXT: an export of every type now names ~140 types
(about 1,900 characters, past its 1,000).
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_generic"
down_revision = "0007_kept"
branch_labels = None
depends_on = None

KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)
SEARCH_INDEXES = {
    "token": "token_code",
    "string": "string_value",
    "date": "date_start",
    "number": "number_value",
    "reference": "ref_id",
    "uri": "uri_value",
}


def _resource_table() -> None:
    op.create_table(
        "fhir_resource",
        sa.Column("resource_num", KEY, autoincrement=True, nullable=False),
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("patient_num", KEY, nullable=True),
        sa.Column("resource_json", sa.Text(), nullable=False),
        sa.Column("upload_id", sa.BigInteger(), nullable=True),
        sa.Column("update_date", TIMESTAMP, nullable=True),
        sa.Column("row_version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("fhir_kept", sa.Text(), nullable=True),  # on every written table (unused)
        sa.ForeignKeyConstraint(
            ["patient_num"],
            ["dwh_patient.patient_num"],
            name="fk_fhir_resource_patient_num_dwh_patient",
        ),
        sa.PrimaryKeyConstraint("resource_num", name="pk_fhir_resource"),
        sqlite_autoincrement=True,  # a deleted resource's id is never given again (0005)
    )
    op.create_index("ix_fhir_resource_type_num", "fhir_resource", ["resource_type", "resource_num"])
    op.create_index(
        "ix_fhir_resource_type_updated", "fhir_resource", ["resource_type", "update_date"]
    )
    op.create_index(
        "ix_fhir_resource_patient_type", "fhir_resource", ["patient_num", "resource_type"]
    )


def _search_value_table() -> None:
    op.create_table(
        "fhir_search_value",
        sa.Column("search_value_num", KEY, autoincrement=True, nullable=False),
        sa.Column("resource_num", KEY, nullable=False),
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("param_name", sa.String(length=100), nullable=False),
        sa.Column("token_system", sa.String(length=500)),
        sa.Column("token_code", sa.String(length=500)),
        sa.Column("string_value", sa.String(length=500)),
        sa.Column("string_exact", sa.String(length=500)),
        sa.Column("date_start", TIMESTAMP),
        sa.Column("date_end", TIMESTAMP),
        sa.Column("number_value", sa.Float()),
        sa.Column("quantity_system", sa.String(length=500)),
        sa.Column("quantity_code", sa.String(length=500)),
        sa.Column("ref_type", sa.String(length=64)),
        sa.Column("ref_id", sa.String(length=500)),
        sa.Column("ref_num", KEY),
        sa.Column("uri_value", sa.String(length=500)),
        sa.ForeignKeyConstraint(
            ["resource_num"],
            ["fhir_resource.resource_num"],
            name="fk_fhir_search_value_resource_num_fhir_resource",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("search_value_num", name="pk_fhir_search_value"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_fhir_search_value_resource_num", "fhir_search_value", ["resource_num"])
    for name, column in SEARCH_INDEXES.items():
        op.create_index(
            f"ix_fhir_search_value_{name}",
            "fhir_search_value",
            ["resource_type", "param_name", column],
        )
    op.create_index("ix_fhir_search_value_referrer", "fhir_search_value", ["ref_type", "ref_num"])


def _export_types_column(kind: sa.types.TypeEngine) -> None:
    """PostgreSQL only: SQLite does not enforce VARCHAR lengths, and a batch copy of the
    table there would lose its AUTOINCREMENT (0005)."""
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("fhir_export_job", "resource_types", type_=kind)


def upgrade() -> None:
    _resource_table()
    _search_value_table()
    _export_types_column(sa.Text())


def downgrade() -> None:
    _export_types_column(sa.String(length=1000))
    op.drop_table("fhir_search_value")
    op.drop_table("fhir_resource")
