"""Engine creation, write transactions and schema migrations."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.pool import NullPool

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
    # pysqlite's own BEGIN is deferred and implicit; _sqlite_begin emits ours instead.
    dbapi_connection.isolation_level = None


def _sqlite_begin(conn: Connection) -> None:
    """BEGIN IMMEDIATE for write transactions, a plain (deferred) BEGIN for reads.

    A deferred transaction that reads, then writes after another writer committed, fails
    at once with SQLITE_BUSY (its snapshot is stale; the busy timeout does not apply), so a
    read-check-write (If-Match, conditional create, a new concept) could not be made atomic.
    IMMEDIATE takes the write lock first: SQLite writers queue (up to the busy timeout) and
    each sees the previous one's commit. Readers are never blocked in WAL mode.
    """
    write = conn.get_execution_options().get("codoc_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets foreign keys on, WAL and a busy timeout.

    SQLite files get a pool too: opening a connection and setting its pragmas costs about
    1 ms, more than a read by id (bench/, docs/PERFORMANCE.md). In-memory ones get none.
    """
    if url.startswith("sqlite"):
        memory = ":memory:" in url or url.rstrip("/") == "sqlite:" or "mode=memory" in url
        pooling: dict[str, Any] = (
            {"poolclass": NullPool} if memory else {"pool_size": 10, "max_overflow": 20}
        )
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **pooling
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """One write transaction: committed at the end, rolled back on any error.

    On SQLite it begins IMMEDIATE (see _sqlite_begin); on PostgreSQL it is a plain READ
    COMMITTED transaction, the rows it changes being locked by the writes themselves.
    """
    with engine.connect() as conn:
        conn.execution_options(codoc_write=True)
        with conn.begin():
            yield conn


def lock_name(conn: Connection, name: str) -> None:
    """Hold a lock on `name` until the transaction ends (concurrent holders queue).

    PostgreSQL: a transaction-level advisory lock on a 64-bit hash of the name. SQLite needs
    nothing: write transactions already run one at a time (BEGIN IMMEDIATE).
    """
    if conn.dialect.name != "postgresql":
        return
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest()
    key = int.from_bytes(digest, "big", signed=True)
    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def insert_if_absent(
    conn: Connection, table: Table, values: dict[str, Any], unique: list[str]
) -> None:
    """Insert the row unless one with the same `unique` columns exists (or is being
    inserted by a concurrent transaction, which this waits for): never a unique violation,
    so the concurrent first use of a new code or thesaurus cannot fail a request."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=[table.c[name] for name in unique])
    )
    conn.execute(statement)


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(url: str) -> None:
    """Bring the database at `url` to the latest schema."""
    from alembic import command

    command.upgrade(alembic_config(url), "head")
