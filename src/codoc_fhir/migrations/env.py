"""Alembic environment: the URL comes from the caller's config (see warehouse.db)."""

from alembic import context
from sqlalchemy import pool

from codoc_fhir.warehouse.db import make_engine
from codoc_fhir.warehouse.schema import declared_here, metadata

config = context.config
url = config.get_main_option("sqlalchemy.url") or ""


def run_migrations_online() -> None:
    engine = make_engine(url) if url.startswith("sqlite") else None
    if engine is None:
        from sqlalchemy import create_engine

        engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
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
