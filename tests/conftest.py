"""Test set-up: the same suite runs on SQLite and on the local PostgreSQL.

Each backend gets a fresh database per run (migrated with Alembic); every test starts from
empty tables with identities reset, so ids in the documented payloads (Patient/1...) hold.
The local rate-limit counter files go to a directory of the run (CODOC_RATE_LIMIT_DIR, also
seen by the servers the tests start) and are forgotten with the tables.
CODOC_TEST_BACKENDS=sqlite (or postgresql) restricts the run to one backend.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

from codoc_fhir.app import create_app
from codoc_fhir.config import Settings
from codoc_fhir.warehouse.db import make_engine, migrate
from codoc_fhir.warehouse.schema import metadata
from tests.fhir_client import FhirTestClient

POSTGRES_ADMIN_URL = os.environ.get(
    "CODOC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = [
    name.strip()
    for name in os.environ.get("CODOC_TEST_BACKENDS", "sqlite,postgresql").split(",")
    if name.strip()
]


@pytest.fixture(scope="session", autouse=True)
def rate_limit_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The run's directory of local rate-limit counters (not /dev/shm, left behind)."""
    directory = tmp_path_factory.mktemp("ratelimit")
    previous = os.environ.get("CODOC_RATE_LIMIT_DIR")
    os.environ["CODOC_RATE_LIMIT_DIR"] = str(directory)
    yield directory
    if previous is None:
        del os.environ["CODOC_RATE_LIMIT_DIR"]
    else:
        os.environ["CODOC_RATE_LIMIT_DIR"] = previous


def forget_local_rate_limits() -> None:
    """Remove the local counter files: the next app counts from zero, as on empty tables."""
    directory = os.environ.get("CODOC_RATE_LIMIT_DIR")
    if directory:
        for path in Path(directory).glob("codoc-fhir-ratelimit-*"):
            path.unlink()


def _postgres_database() -> Iterator[str]:
    name = f"codoc_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated, empty database of each backend."""
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("sqlite") / "codoc_test.db"
        url = f"sqlite:///{path}"
        migrate(url)
        yield url
    else:
        generator = _postgres_database()
        url = next(generator)
        migrate(url)
        yield url
        generator.close()


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "CODOC_DATABASE_URL": database_url,
        "CODOC_RATE_LIMIT_ANONYMOUS": "off",  # tests of the limits turn them on
        "CODOC_RATE_LIMIT_AUTHENTICATED": "off",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def empty_tables(engine: Engine) -> None:
    """Every table emptied, identities reset, and the local rate-limit counters forgotten."""
    forget_local_rate_limits()
    tables = [table.name for table in reversed(metadata.sorted_tables)]
    if engine.dialect.name == "postgresql":
        _truncate(engine, tables)
        return
    with engine.begin() as conn:
        for name in tables:
            conn.execute(text(f"DELETE FROM {name}"))
        conn.execute(text("DELETE FROM sqlite_sequence"))  # AUTOINCREMENT counters


def _truncate(engine: Engine, tables: list[str]) -> None:
    """TRUNCATE every table, tried again when PostgreSQL picks it as a deadlock victim.

    A server process of the previous test, or an access-log writer, may still be finishing a
    write that locks two tables in the other order than TRUNCATE takes them; PostgreSQL then
    aborts one of the two. The test's own state is what matters here, so try again.
    """
    for attempt in range(5):
        try:
            with engine.begin() as conn:
                conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
            return
        except OperationalError as error:
            if attempt == 4 or getattr(error.orig, "sqlstate", None) not in ("40P01", "55P03"):
                raise
            time.sleep(0.2 * (attempt + 1))


def flush_access_log(app: Any) -> None:
    """Write pending access log rows now, so none lands in the next test's tables."""
    writer = getattr(app.state, "access_log", None)
    if writer is not None:
        writer.flush()


@pytest.fixture(scope="session")
def app(database_url: str) -> Any:
    return create_app(make_settings(database_url))


@pytest.fixture
def client(app: Any, engine: Engine) -> Iterator[FhirTestClient]:
    """A client on empty tables; every resource it receives is checked against R4B."""
    flush_access_log(app)
    empty_tables(engine)
    with FhirTestClient(app) as test_client:
        yield test_client


@pytest.fixture
def make_client(database_url: str, engine: Engine) -> Iterator[Any]:
    """Build a client for an app with other settings (thesaurus codes, limits, auth...)."""
    empty_tables(engine)
    opened: list[FhirTestClient] = []

    def build(**overrides: Any) -> FhirTestClient:
        test_client = FhirTestClient(create_app(make_settings(database_url, **overrides)))
        test_client.__enter__()
        opened.append(test_client)
        return test_client

    yield build
    for test_client in opened:
        test_client.__exit__(None, None, None)
        flush_access_log(test_client.app)
