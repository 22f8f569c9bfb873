"""Engine creation, write transactions and schema migrations."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from select import POLLIN, poll
from typing import Any

from sqlalchemy import Connection, Engine, Table, create_engine, event, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import NullPool

from codoc_fhir.warehouse.schema import fhir_server_secret

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
IDLE = 0  # libpq's PQTRANS_IDLE: no transaction open on the connection
OPENS_TRANSACTION = "codoc_opens_transaction"  # set on a statement's execution context
BEFORE_ANY_WORK = "codoc_before_any_work"  # set on a disconnect error, see failed_before_work


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


def make_engine(url: str, statement_timeout: float | None = None) -> Engine:
    """An engine for `url`; SQLite gets foreign keys on, WAL and a busy timeout.

    SQLite files get a pool too: opening a connection and setting its pragmas costs about
    1 ms, more than a read by id (bench/, docs/PERFORMANCE.md). In-memory ones get none.
    Bound parameters never appear in error messages (hence in logs): they carry values of
    request bodies. On PostgreSQL, `statement_timeout` (seconds, CODOC_STATEMENT_TIMEOUT)
    bounds every statement of every connection: no request keeps a backend busy for long.
    Its pooled connections are checked on checkout without a round trip (_refuse_dead).
    """
    if url.startswith("sqlite"):
        memory = ":memory:" in url or url.rstrip("/") == "sqlite:" or "mode=memory" in url
        pooling: dict[str, Any] = (
            {"poolclass": NullPool} if memory else {"pool_size": 10, "max_overflow": 20}
        )
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            hide_parameters=True,
            **pooling,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    connect_args: dict[str, Any] = {}
    if statement_timeout and url.startswith("postgresql"):
        connect_args["options"] = f"-c statement_timeout={int(statement_timeout * 1000)}"
    engine = create_engine(
        url, pool_size=10, max_overflow=20, hide_parameters=True, connect_args=connect_args
    )
    event.listen(engine.pool, "checkout", _refuse_dead)
    event.listen(engine, "before_cursor_execute", _note_first_statement)
    event.listen(engine, "handle_error", _without_detail)
    event.listen(engine, "handle_error", _mark_before_any_work)
    return engine


def _refuse_dead(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Pool checkout: a connection the server already closed is replaced, with no round trip.

    It stands in for `pool_pre_ping`, which sent a `;` on every checkout (psycopg 3, the
    project's one PostgreSQL driver, is assumed here and in _note_first_statement). An idle
    PostgreSQL connection receives nothing unless the server ends it (a FATAL
    "terminating connection" then the close, or a bare EOF or reset): a readable socket
    means a dead connection (were it anything else, a stray NOTICE, replacing the
    connection would cost a reconnect, nothing more). DisconnectionError makes the pool
    open a new one.
    The poll takes about a microsecond; a drop it cannot see (after the checkout) is left
    to transactions.run_write and run_read, which retry where nothing was done yet.
    """
    if dbapi_connection.closed or dbapi_connection.broken or _has_input(dbapi_connection):
        raise DisconnectionError("the server closed the pooled connection")


def _has_input(dbapi_connection: Any) -> bool:
    """Whether the connection's socket has something to read (or hung up), without waiting."""
    poller = poll()
    poller.register(dbapi_connection.fileno(), POLLIN)
    return bool(poller.poll(0))


def _note_first_statement(
    _conn: Any, cursor: Any, _statement: Any, _parameters: Any, context: Any, _many: Any
) -> None:
    """Remember whether this statement opens the transaction (psycopg sends BEGIN first).

    Read by _mark_before_any_work: a connection found dead on this statement has done
    nothing of the transaction's work, so the work may run again from scratch. Under
    autocommit every statement finds the connection idle, the earlier ones committed:
    none counts as opening.
    """
    if context is not None:
        dbapi_connection = cursor.connection
        idle = dbapi_connection.pgconn.transaction_status == IDLE
        setattr(context, OPENS_TRANSACTION, idle and not dbapi_connection.autocommit)


def _mark_before_any_work(context: Any) -> None:
    """A disconnect on the statement that opened the transaction: mark the error (see
    failed_before_work). A drop on a later statement, or during COMMIT (its outcome
    unknown), is left unmarked."""
    opening = getattr(context.execution_context, OPENS_TRANSACTION, False)
    error = context.sqlalchemy_exception
    if context.is_disconnect and opening and error is not None:
        setattr(error, BEFORE_ANY_WORK, True)


def failed_before_work(error: BaseException) -> bool:
    """Whether `error` is a dropped connection found on a transaction's first statement
    (its BEGIN or the statement itself): nothing was executed, running again is safe."""
    return bool(getattr(error, BEFORE_ANY_WORK, False))


def _without_detail(context: Any) -> None:
    """Drop PostgreSQL's DETAIL from error messages: it quotes row values (`Key (ipp)=(IPP1)
    already exists`), and messages end up in logs. `error.diag` still holds it all."""
    error = context.original_exception
    primary = getattr(getattr(error, "diag", None), "message_primary", None)
    if primary:
        error.args = (primary,)
        wrapped = context.sqlalchemy_exception  # its message was made from the original's
        if wrapped is not None:
            origin = f"{type(error).__module__}.{type(error).__name__}"
            wrapped.args = (f"({origin}) {primary}", *wrapped.args[1:])


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


def server_secret(engine: Engine, name: str) -> str:
    """The random secret `name` of this database, created by the first process to ask.

    INSERT ... ON CONFLICT DO NOTHING then SELECT: workers starting together all end up
    with the one row that won, and so does every later restart.
    """
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    row = {
        "secret_name": name,
        "secret_value": secrets.token_hex(32),
        "create_date": datetime.now(UTC),
    }
    table = fhir_server_secret
    with engine.begin() as conn:
        conn.execute(dialect.insert(table).values(row).on_conflict_do_nothing())
        query = select(table.c.secret_value).where(table.c.secret_name == name)
        return str(conn.execute(query).scalar_one())
