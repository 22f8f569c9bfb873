"""What api/front.py uses for 406, 408 and 413 answers, and the access log: its rows and
the background writer."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import orjson
import psycopg
from sqlalchemy import Connection, Engine

from codoc_fhir.fhir.errors import FhirError, operation_outcome
from codoc_fhir.warehouse.schema import fhir_access_log

Scope = dict[str, Any]
log = logging.getLogger("codoc_fhir.access")


async def _send_outcome(send: Any, status: int, code: str, diagnostics: str) -> None:
    body = orjson.dumps(operation_outcome(code, diagnostics))
    headers = [
        (b"content-type", b"application/fhir+json"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _query_value(query: bytes, name: str) -> str | None:
    for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if key == name:
            return value
    return None


class BodyTimedOut(FhirError):
    status, code = 408, "timeout"


class AccessLogWriter:
    """Writes access log rows from a background thread, in batches, off the request path.

    Rows that cannot be written (the database is away) are kept and written once it is
    back, oldest first; at most `max_pending` rows wait, and the number of rows dropped past
    that is logged (never the rows themselves).

    The rows wait in a deque, not a `queue.Queue`: appending to a deque is atomic and takes
    no lock, where `Queue.put` takes a mutex and signals a condition on every request (about
    a twentieth of a create's time holding the GIL, docs/PERFORMANCE.md). The writer never
    blocks on the rows: it wakes every `interval` and takes what is there.
    """

    def __init__(
        self,
        engine: Engine,
        batch_size: int = 500,
        interval: float = 0.5,
        max_pending: int = 100_000,
    ) -> None:
        self.engine = engine
        self.batch_size = batch_size
        self.interval = interval
        self.max_pending = max_pending
        self.pending: deque[dict[str, Any]] = deque()
        self.unwritten: list[dict[str, Any]] = []  # taken from `pending`, write failed
        self.dropped = 0
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name="access-log", daemon=True)
        self.thread.start()

    def add(self, row: dict[str, Any]) -> None:
        if len(self.pending) < self.max_pending:
            self.pending.append(row)
            return
        with self.lock:
            self.dropped += 1

    def flush(self) -> bool:
        """Write every pending row now (at shutdown, by tests); False if the database
        refused them (they stay pending)."""
        with self.lock:
            rows = self.unwritten
            pending = self.pending
            while pending:
                rows.append(pending.popleft())
            self._report_dropped(len(rows))
            if not rows:
                return True
            try:
                with self.engine.begin() as conn:
                    write_rows(conn, rows)
            except Exception as error:
                self.unwritten = rows
                log.warning(
                    "could not write %d access log rows (%s); kept for the next try",
                    len(rows),
                    type(error).__name__,
                )
                return False
            self.unwritten = []
            return True

    def _report_dropped(self, waiting: int) -> None:
        """Drop the oldest kept rows past `max_pending`, and log how many were lost."""
        excess = waiting - self.max_pending
        if excess > 0:
            del self.unwritten[:excess]
            self.dropped += excess
        if self.dropped:
            log.error("access log buffer full: %d rows dropped", self.dropped)
            self.dropped = 0

    def _run(self) -> None:
        while True:
            time.sleep(self.interval)
            self.flush()


ACCESS_LOG_COLUMNS = [column.name for column in fhir_access_log.columns][1:]  # no key
COPY_ACCESS_LOG = f"COPY fhir_access_log ({', '.join(ACCESS_LOG_COLUMNS)}) FROM STDIN"


def write_rows(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert access log rows: PostgreSQL `COPY` (psycopg 3), one multi-row INSERT otherwise.

    COPY streams the batch in one statement without SQLAlchemy's per-row parameter
    processing: the writer thread holds the GIL the request path needs for less time."""
    driver = conn.connection.driver_connection
    if conn.dialect.name != "postgresql" or not isinstance(driver, psycopg.Connection):
        conn.execute(fhir_access_log.insert(), rows)
        return
    with driver.cursor() as cursor, cursor.copy(COPY_ACCESS_LOG) as copy:
        for row in rows:
            copy.write_row([row[name] for name in ACCESS_LOG_COLUMNS])


def _header(headers: dict[bytes, bytes], name: bytes, limit: int) -> str | None:
    value = headers.get(name)
    return value.decode("latin-1")[:limit] if value is not None else None


_SECRET_PARAM = re.compile(r"(^|&)([^=&]*(?:token|secret|password)[^=&]*)=[^&]*", re.I)


def _redact(query: str) -> str:
    """The query string with the values of token-like parameters replaced (never logged)."""
    return _SECRET_PARAM.sub(r"\1\2=REDACTED", query)


def access_row(
    scope: Scope, headers: dict[bytes, bytes], status: int, started: datetime, elapsed: float
) -> dict[str, Any]:
    """The access log row of a request (`headers`: the last value of each name)."""
    raw_query = scope.get("query_string", b"")
    query = _redact(raw_query.decode("latin-1")) if raw_query else ""
    url = scope.get("path", "") + (f"?{query}" if query else "")
    client = scope.get("client")
    ended = datetime.now(UTC)
    return {
        "user_id": (scope.get("state") or {}).get("user_id", "anonymous"),
        "ip_address": client[0] if client else None,
        "method": scope.get("method", "")[:10],
        "url": url[:4000],
        "content_type": _header(headers, b"content-type", 200),
        "accept": _header(headers, b"accept", 200),
        "user_agent": _header(headers, b"user-agent", 400),
        "status_code": status,
        "start_date": started,
        "end_date": ended,
        "duration_ms": round(elapsed * 1000, 3),
    }
