"""One `codoc-fhir import` at a time per database.

Two imports of the same files at once would both find a resource missing from the id map
and create it twice; two imports of different files would each retry the other's
references in vain. So a run holds a lock for its whole length, released by the system
even when the process is killed:

- PostgreSQL: a session advisory lock (`pg_try_advisory_lock` on a hash of LOCK_NAME;
  advisory locks belong to one database), held by one connection kept open for the run;
- SQLite (a file): an exclusive `flock` on `<database file>-import-lock` beside it (a
  lock row would stay behind after a kill; the kernel drops a flock with its process);
- an in-memory SQLite database is private to its process: nothing to lock.

Without `--wait` the second run exits (status 2) with one line; with it, it waits.
"""

from __future__ import annotations

import fcntl
import hashlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TextIO

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

LOCK_NAME = "codoc-fhir import"
BUSY = (
    "error: another `codoc-fhir import` is running on this database; wait for it to end, "
    "or run with --wait to queue behind it"
)


class ImportRunning(Exception):
    """Another import holds the lock (and the caller did not ask to wait)."""

    def __init__(self) -> None:
        super().__init__(BUSY)


@contextmanager
def import_lock(url: str, wait: bool, err: TextIO | None = None) -> Iterator[None]:
    """Hold the database's import lock while inside; ImportRunning when it is taken and
    `wait` is false."""
    err = err or sys.stderr
    if url.startswith("postgresql"):
        with _advisory_lock(url, wait, err):
            yield
        return
    path = _sqlite_file(url)
    if path is None or not path.parent.is_dir():  # no folder: opening it fails, as it says
        yield
        return
    with _file_lock(Path(f"{path}-import-lock"), wait, err):
        yield


def _lock_key(name: str) -> int:
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextmanager
def _advisory_lock(url: str, wait: bool, err: TextIO) -> Iterator[None]:
    engine = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    key = {"key": _lock_key(LOCK_NAME)}
    try:
        with engine.connect() as conn:
            taken = conn.execute(text("SELECT pg_try_advisory_lock(:key)"), key).scalar_one()
            if not taken:
                if not wait:
                    raise ImportRunning
                print(_WAITING, file=err, flush=True)
                conn.execute(text("SELECT pg_advisory_lock(:key)"), key)
            try:
                yield
            finally:
                with suppress(DBAPIError):  # a lost connection took the lock with it
                    conn.execute(text("SELECT pg_advisory_unlock(:key)"), key)
    finally:
        engine.dispose()


@contextmanager
def _file_lock(path: Path, wait: bool, err: TextIO) -> Iterator[None]:
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                raise ImportRunning from None
            print(_WAITING, file=err, flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


_WAITING = "waiting: another `codoc-fhir import` is running on this database"


def _sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL; None for an in-memory database."""
    database = make_url(url).database
    if not database or database == ":memory:" or "mode=memory" in url:
        return None
    return Path(database).resolve()
