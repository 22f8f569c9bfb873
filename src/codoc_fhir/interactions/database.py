"""Where an interaction runs its SQL: its own transaction, or one its caller holds open.

The rule: an interaction function owns its transaction (a read connection, or one write
transaction retried when it raced, warehouse/transactions.py) unless it is given a
`Joined`, which runs it inside the caller's open transaction: a transaction Bundle's
entries all join the Bundle's one transaction, so they commit or roll back together.
The work handed to a Database is a function of the connection only, so that the write
transaction can run it again from scratch after a deadlock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection, Engine

from codoc_fhir.fhir.errors import FhirError, Transient
from codoc_fhir.resources import lookups
from codoc_fhir.resources.registry import Registry
from codoc_fhir.warehouse import transactions
from codoc_fhir.warehouse.db import write_transaction

T = TypeVar("T")


class Database(Protocol):
    """How an interaction gets a transaction, and the registry of the types served."""

    registry: Registry

    def run_read(self, work: Callable[[Connection], T]) -> T:
        """`work(conn)` on a read connection."""

    def run_write(self, work: Callable[[Connection], T]) -> T:
        """`work(conn)` in a write transaction: everything or nothing."""

    def run_write_trusting_keys(self, work: Callable[[Connection], T]) -> T:
        """`run_write`, where the work may leave to the foreign keys the look-ups they
        also make (resources/lookups.py `foreign_keys_trusted`)."""

    def run_rolled_back(self, work: Callable[[Connection], Any]) -> None:
        """`work(conn)` in a transaction that is rolled back whatever happens ($validate)."""


class _RolledBack(Exception):
    """Raised at the end of a successful dry run so that its transaction never commits."""


@dataclass
class Engined:
    """A Database on an engine: each interaction in a transaction of its own."""

    engine: Engine
    registry: Registry

    def run_read(self, work: Callable[[Connection], T]) -> T:
        return transactions.run_read(self.engine, work)

    def run_write(self, work: Callable[[Connection], T]) -> T:
        """One transaction per write: everything or nothing, retried when it raced."""
        return transactions.run_write(self.engine, work)

    def run_write_trusting_keys(self, work: Callable[[Connection], T]) -> T:
        """On PostgreSQL, the work first runs with the foreign keys trusted. If it is
        refused in any way after it skipped a look-up (a foreign key, or a later check that
        the skipped look-up would have preceded, as the stay of another patient than a
        missing subject), everything is rolled back and the work runs again with every
        look-up: its answer is the one the contract gives. A valid create skips its
        reference queries; a refusal after a skipped look-up costs a transaction more; a
        refusal before any (an invalid body) is answered as it is. An unavailable database
        is not asked twice. SQLite stays checked (its pool serialises writers anyway)."""
        if self.engine.dialect.name != "postgresql":
            return self.run_write(work)
        with lookups.foreign_keys_trusted() as trust:
            try:
                return self.run_write(work)
            except Transient:
                raise
            except FhirError:
                if not trust.skipped:
                    raise
        return self.run_write(work)

    def run_rolled_back(self, work: Callable[[Connection], Any]) -> None:
        """Not retried nor translated: a database refusal is the check's own answer."""
        try:
            with write_transaction(self.engine) as conn:
                work(conn)
                raise _RolledBack
        except _RolledBack:
            return


@dataclass
class Joined:
    """A Database that is one open transaction: interactions run in `conn` and neither
    commit nor roll back (the owner of the transaction does)."""

    conn: Connection
    registry: Registry

    def run_read(self, work: Callable[[Connection], T]) -> T:
        return work(self.conn)

    def run_write(self, work: Callable[[Connection], T]) -> T:
        return work(self.conn)

    def run_write_trusting_keys(self, work: Callable[[Connection], T]) -> T:
        """Checked: a refused statement would abort the transaction it joins."""
        return work(self.conn)

    def run_rolled_back(self, work: Callable[[Connection], Any]) -> None:
        """In a savepoint of the open transaction, rolled back."""
        savepoint = self.conn.begin_nested()
        try:
            work(self.conn)
        finally:
            savepoint.rollback()
