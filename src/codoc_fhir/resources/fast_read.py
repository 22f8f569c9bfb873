"""Reads by id in one round trip on an async psycopg pool (PostgreSQL), no HTTP here.

The generic read (`Resource.read` through `transactions.run_read`) runs synchronous
SQLAlchemy in the thread pool: BEGIN, the row, ROLLBACK, and the Core machinery around
each statement. For the kinds whose one joined row already holds what
their mapping needs (the `dwh_data` kinds: Procedure, Condition, lab Observation,
MedicationRequest, DiagnosticReport, whose `base_query` joins the concept and the
performers' names), a read is one statement. This module runs it on the event loop:

- the kind's own `base_query()` restricted to one key, compiled once per kind to
  PostgreSQL SQL (psycopg prepares it server-side after a few executions);
- autocommit connections: one SELECT is one round trip (no BEGIN, no ROLLBACK), and no
  pre-ping: a read on a connection found dead (the database restarted) is retried once,
  on a fresh connection of its own, while the pool tests and replaces its idle ones;
- the row rendered exactly as `Resource.render` renders it (`to_fhir`, the kept elements,
  `meta`), so the answer is the generic read's, byte for byte.

Only found rows are answered here: a missing row (404 or 410, which needs the history) is
left to the generic read, as is any database failure other than a dead connection.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, cast

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Connection, bindparam
from sqlalchemy.dialects.postgresql import psycopg as postgresql_psycopg
from sqlalchemy.engine import RowMapping, make_url

from codoc_fhir.resources.base import Resource
from codoc_fhir.resources.data_fact import DataFactResource

log = logging.getLogger("codoc_fhir.database")

KEY_PARAMETER = "fast_read_key"
POOL_MAX_SIZE = 10  # per worker process, as the synchronous engine's pool_size
# Longer without a free connection (all busy, or the database away): left to the generic
# read, which answers at once (503 when the database is away).
POOL_WAIT_SECONDS = 1.0
# `load_related` of the dwh_data kinds reads the joined row only; it is handed no connection.
NO_CONNECTION = cast(Connection, None)


async def _answer(
    conn: psycopg.AsyncConnection[Any], sql: str, parameters: dict[str, Any], many: bool
) -> Any:
    """The first row (None when there is none), or every row with `many`."""
    cursor = await conn.execute(sql, parameters)
    return await cursor.fetchall() if many else await cursor.fetchone()


class ReadFailed(Exception):
    """The fast read could not ask the database; the generic read answers instead."""


def answers_in_one_row(kind: Resource) -> bool:
    """Whether `kind`'s `base_query` row holds everything its mapping reads: the dwh_data
    kinds that keep the shared `load_related`, which derives the concept and the
    performers' names from the joined columns (a kind overriding it may query more)."""
    return (
        isinstance(kind, DataFactResource)
        and type(kind).load_related is DataFactResource.load_related
    )


@dataclass(frozen=True)
class CompiledRead:
    """One kind's read statement, compiled once: SQL text and its fixed parameters."""

    sql: str
    parameters: dict[str, Any]

    @classmethod
    def of(cls, kind: Resource) -> CompiledRead:
        statement = kind.base_query().where(kind.key == bindparam(KEY_PARAMETER))
        compiled = statement.compile(dialect=postgresql_psycopg.dialect())
        parameters = dict(compiled.construct_params({KEY_PARAMETER: 0}))
        parameters.pop(KEY_PARAMETER, None)
        return cls(str(compiled), parameters)


def psycopg_conninfo(database_url: str) -> str:
    """The libpq URI of an SQLAlchemy URL (`postgresql+psycopg://...`)."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(False)


class FastReader:
    """The async pool and the compiled statements of one process (one event loop).

    The pool opens on the first read, in the loop that serves it, and closes with the
    application; a read from another loop (test clients run one per test) reopens it there.
    """

    def __init__(self, database_url: str, statement_timeout: float | None = None) -> None:
        self.conninfo = psycopg_conninfo(database_url)
        self.connect_options: dict[str, Any] = {"autocommit": True, "row_factory": dict_row}
        if statement_timeout:
            timeout_ms = int(statement_timeout * 1000)
            self.connect_options["options"] = f"-c statement_timeout={timeout_ms}"
        self.statements: dict[int, CompiledRead] = {}
        self.pool: AsyncConnectionPool | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.checking: asyncio.Task[None] | None = None  # the pool's check after a failure
        self.served = 0  # reads answered by the fast path (tests check it was taken)

    def statement(self, kind: Resource) -> CompiledRead:
        found = self.statements.get(id(kind))
        if found is None:
            found = self.statements[id(kind)] = CompiledRead.of(kind)
        return found

    async def _open_pool(self) -> AsyncConnectionPool:
        loop = asyncio.get_running_loop()
        if self.pool is not None and self.loop is loop:
            return self.pool
        self.pool, self.loop = None, loop  # another loop's pool cannot be used (nor closed) here
        pool: AsyncConnectionPool = AsyncConnectionPool(
            self.conninfo,
            min_size=1,
            max_size=POOL_MAX_SIZE,
            kwargs=self.connect_options,
            timeout=POOL_WAIT_SECONDS,
            open=False,
            name="codoc-fast-read",
        )
        await pool.open(wait=False)
        if self.loop is loop and self.pool is None:
            self.pool = pool
            return pool
        await pool.close()  # another request of this loop opened one meanwhile
        assert self.pool is not None
        return self.pool

    async def close(self) -> None:
        pool, self.pool = self.pool, None
        if pool is not None and self.loop is asyncio.get_running_loop():
            await pool.close()

    async def fetch(self, kind: Resource, num: int) -> RowMapping | None:
        """The row `num` of `kind` (None when there is none); ReadFailed when the database
        cannot be asked."""
        compiled = self.statement(kind)
        parameters = {**compiled.parameters, KEY_PARAMETER: num}
        return cast(RowMapping | None, await self.ask(compiled.sql, parameters, many=False))

    async def fetch_all(self, sql: str, parameters: dict[str, Any]) -> list[RowMapping]:
        """Every row of a compiled statement (the fast search's); ReadFailed as `fetch`."""
        return cast(list[RowMapping], await self.ask(sql, parameters, many=True))

    async def ask(self, sql: str, parameters: dict[str, Any], *, many: bool) -> Any:
        """One statement on a pooled connection: ReadFailed when the database cannot be
        asked. A pooled connection found dead is retried once, on a fresh one."""
        pool = await self._open_pool()
        try:
            async with pool.connection() as conn:
                try:
                    return await _answer(conn, sql, parameters, many)
                except psycopg.Error as error:
                    if not conn.broken:
                        raise ReadFailed(type(error).__name__) from error
                    log.info("fast read: dead connection (%s), retrying", type(error).__name__)
        except psycopg.Error as error:  # no connection from the pool (PoolTimeout)
            raise ReadFailed(type(error).__name__) from error
        self._drop_dead_connections(pool)
        return await self._ask_on_fresh_connection(sql, parameters, many)

    async def _ask_on_fresh_connection(
        self, sql: str, parameters: dict[str, Any], many: bool
    ) -> Any:
        """The retry, on a connection of its own: the pool's others may be dead too."""
        try:
            conn = await psycopg.AsyncConnection.connect(self.conninfo, **self.connect_options)
            async with conn:
                return await _answer(conn, sql, parameters, many)
        except psycopg.Error as error:
            raise ReadFailed(type(error).__name__) from error

    def _drop_dead_connections(self, pool: AsyncConnectionPool) -> None:
        """Let the pool test its idle connections (in the background) and replace the dead."""
        if self.checking is None or self.checking.done():
            self.checking = asyncio.get_running_loop().create_task(pool.check())

    def render(self, kind: Resource, row: RowMapping) -> dict[str, Any]:
        """The resource as `Resource.read` answers the row."""
        return kind.render([row], kind.load_related(NO_CONNECTION, [row]))[0]
