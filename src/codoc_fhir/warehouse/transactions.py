"""Running work against the database, and what a database failure means to a client.

Every request's database work goes through `run_read` or `run_write` here, so that the
rules of CONTRACT section 8 hold in one place:

- a deadlock, a serialisation failure or a busy SQLite file is retried (bounded, with a
  short jittered pause); if it persists the client gets 409 `conflict`, never a 500;
- a database that refuses connections or drops them gives 503 `transient` with
  Retry-After; the pool reconnects by itself once the database is back. A write whose
  connection turns out dead before any of its work was done (on BEGIN or its first
  statement) runs once more on a new connection; one dropped later, or during COMMIT
  (whose outcome is unknown), is never run again. A read is run again once either way;
- a unique or foreign-key violation the checks missed is 409, a value a column refuses 400.

The work is a function of the connection only, so that it can run again from scratch.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

from codoc_fhir.fhir.errors import Conflict, FhirError, Invalid, Transient
from codoc_fhir.warehouse.db import failed_before_work, write_transaction

log = logging.getLogger("codoc_fhir.database")

T = TypeVar("T")
ATTEMPTS = 4  # first try + retries of a deadlocked / serialisation-failed write
RETRY_AFTER_SECONDS = 5
RACE_STATES = {"40P01", "40001"}  # deadlock_detected, serialization_failure
TIMEOUT_STATE = "57014"  # query_canceled: statement_timeout


def sqlstate(error: DBAPIError) -> str | None:
    """The SQLSTATE of a PostgreSQL error (psycopg), None for other drivers."""
    return getattr(error.orig, "sqlstate", None)


def is_race(error: BaseException) -> bool:
    """A failure that running the same work again can cure: a deadlock, a serialisation
    failure, or (SQLite) the file being locked by another writer past the busy timeout."""
    if not isinstance(error, DBAPIError) or isinstance(error, IntegrityError):
        return False
    if sqlstate(error) in RACE_STATES:
        return True
    orig = error.orig
    return isinstance(orig, sqlite3.OperationalError) and "locked" in str(orig)


def database_fault(error: DBAPIError) -> FhirError | None:
    """The client-facing error for a database failure, None if it is a server bug (500)."""
    if isinstance(error, IntegrityError):
        return Conflict("The change conflicts with existing data (a duplicate or a dangling link)")
    if isinstance(error, DataError):
        return Invalid("A value does not fit its warehouse column (too long or out of range)")
    if is_race(error):
        return Conflict("The change raced with concurrent changes and was not applied: retry it")
    if sqlstate(error) == TIMEOUT_STATE:
        return Transient(
            "The request needs more database time than the server allows; narrow it",
            code="too-costly",
        )
    if error.connection_invalidated or _is_unavailable(error):
        return Transient(
            "The database is unavailable; nothing was done, retry later",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    return None


def _is_unavailable(error: DBAPIError) -> bool:
    """Connection refused, reset, closed, or the server shutting down (PostgreSQL class
    08 connection exceptions, 57P0x operator intervention)."""
    state = sqlstate(error) or ""
    if state.startswith("08") or state in ("57P01", "57P02", "57P03"):
        return True
    name = type(error.orig).__name__
    return name in ("OperationalError", "InterfaceError") and not isinstance(
        error.orig, sqlite3.Error
    )


def run_write(engine: Engine, work: Callable[[Any], T]) -> T:
    """`work(conn)` in one write transaction, retried on deadlocks and serialisation
    failures, and once on a connection found dead before any of the work was done;
    database failures raised as the client-facing FhirError."""
    dropped = False
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with write_transaction(engine) as conn:
                return work(conn)
        except DBAPIError as error:
            if attempt == ATTEMPTS or not _worth_again(error, attempt, dropped):
                raise _client_error(error) from error
            dropped = dropped or failed_before_work(error)
    raise AssertionError("unreachable")  # pragma: no cover


def _worth_again(error: DBAPIError, attempt: int, dropped: bool) -> bool:
    """Whether the write that failed with `error` should run again (after a short jittered
    pause when it raced: the other writer goes first). A dead connection is worth one more
    try, on a new connection, only when nothing of the work ran (db.failed_before_work):
    after a statement, or in COMMIT, the client gets the 503 and decides."""
    if is_race(error):
        log.info("write raced (attempt %d of %d), retrying", attempt, ATTEMPTS)
        time.sleep(random.uniform(0.005, 0.05) * attempt)
        return True
    if not dropped and failed_before_work(error):
        log.info("write found its connection dead before any work, retrying")
        return True
    return False


def run_read(engine: Engine, work: Callable[[Any], T]) -> T:
    """`work(conn)` on a read connection, tried once more if the pooled connection
    turned out dead (the database restarted since it was opened)."""
    for attempt in (1, 2):
        try:
            with engine.connect() as conn:
                return work(conn)
        except DBAPIError as error:
            if error.connection_invalidated and attempt == 1:
                continue
            raise _client_error(error) from error
    raise AssertionError("unreachable")  # pragma: no cover


def _client_error(error: DBAPIError) -> Exception:
    fault = database_fault(error)
    return fault if fault is not None else error
