"""The Alembic migrations produce exactly the schema declared in warehouse/schema.py."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from codoc_fhir.warehouse.schema import declared_here, metadata


def test_migrated_database_matches_the_declared_schema(engine):
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": False, "include_name": declared_here}
        )
        differences = compare_metadata(context, metadata)
    assert differences == []


def test_an_older_database_is_upgraded_keeping_its_rows(tmp_path):
    from alembic import command
    from sqlalchemy import select

    from codoc_fhir.warehouse.db import alembic_config, make_engine, migrate
    from codoc_fhir.warehouse.schema import dwh_patient
    from tests.factories import make_patient

    url = f"sqlite:///{tmp_path / 'old.db'}"
    command.upgrade(alembic_config(url), "0001")
    engine = make_engine(url)
    make_patient(engine, lastname="Before")
    migrate(url)
    with engine.connect() as conn:
        assert conn.execute(select(dwh_patient.c.lastname)).scalars().all() == ["Before"]
        context = MigrationContext.configure(
            conn, opts={"compare_type": False, "include_name": declared_here}
        )
        assert compare_metadata(context, metadata) == []
    engine.dispose()
