"""The Alembic migrations produce exactly the schema declared in warehouse/schema.py."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from codoc_fhir.warehouse.schema import metadata


def test_migrated_database_matches_the_declared_schema(engine):
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        differences = compare_metadata(context, metadata)
    assert differences == []
