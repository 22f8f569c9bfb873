"""Alembic environment: the URL comes from the caller's config (see warehouse.db)."""

from typing import Any

from alembic import context
from sqlalchemy import pool

from codoc_fhir.warehouse.db import make_engine
from codoc_fhir.warehouse.schema import declared_here, metadata

config = context.config
url = config.get_main_option("sqlalchemy.url") or ""


def _foreign_keys_off(connection: Any) -> None:
    """SQLite migrations recreate tables (batch mode): a parent dropped and copied while
    foreign keys are enforced would fail or cascade. The pragma is ignored inside a
    transaction, and every statement through SQLAlchemy runs in one (warehouse.db's BEGIN),
    so it goes to the driver connection directly, before the migrations' transaction.
    Migrations that recreate tables check `PRAGMA foreign_key_check` before they end."""
    connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")


def run_migrations_online() -> None:
    engine = make_engine(url) if url.startswith("sqlite") else None
    if engine is None:
        from sqlalchemy import create_engine

        engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        if url.startswith("sqlite"):
            _foreign_keys_off(connection)
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=url.startswith("sqlite"),
            compare_type=True,
            include_name=declared_here,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
