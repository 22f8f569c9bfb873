"""ASGI middleware: content negotiation (406), the body size limit (413), the body read
timeout (408), the access log."""

from __future__ import annotations

import asyncio
import logging
import queue
import re
import threading
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import orjson
import psycopg
from sqlalchemy import Connection, Engine

from codoc_fhir.fhir.errors import FhirError, operation_outcome
from codoc_fhir.fhir.responses import check_acceptable
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


class NegotiationMiddleware:
    """406 before anything runs when the client accepts no JSON (`Accept`, `_format`),
    under the FHIR base path only (the API docs serve HTML)."""

    def __init__(self, app: Any, prefix: str) -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefix):
            headers = dict(scope["headers"])
            accept = headers.get(b"accept", b"").decode("latin-1")
            wanted = _query_value(scope.get("query_string", b""), "_format")
            try:
                check_acceptable(accept, wanted)
            except FhirError as error:
                await _send_outcome(send, error.status, error.code, error.diagnostics)
                return
        await self.app(scope, receive, send)


def _query_value(query: bytes, name: str) -> str | None:
    for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if key == name:
            return value
    return None


class BodyLimitMiddleware:
    """413 for bodies over the limit, whether announced by Content-Length or streamed.

    Transaction and batch Bundles (POST on the base URL) have their own, larger limit.
    """

    def __init__(
        self,
        app: Any,
        max_bytes: int,
        transaction_bytes: int | None = None,
        transaction_path: str = "/v4.3.0",
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.transaction_bytes = transaction_bytes
        self.transaction_path = transaction_path

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        posts_bundle = scope.get("method") == "POST"
        if posts_bundle and scope.get("path", "").rstrip("/") == self.transaction_path:
            limit = self.transaction_bytes or limit
        await self._limited(scope, receive, send, limit)

    async def _limited(self, scope: Scope, receive: Any, send: Any, limit: int) -> None:
        announced = dict(scope["headers"]).get(b"content-length")
        if announced is not None and (not announced.isdigit() or int(announced) > limit):
            await _send_outcome(send, 413, "too-costly", f"Request body larger than {limit} bytes")
            return
        received = 0
        too_large = False

        async def limited_receive() -> Any:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    too_large = True
                    raise _BodyTooLarge()
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _BodyTooLarge:
            await _send_outcome(send, 413, "too-costly", f"Request body larger than {limit} bytes")


class _BodyTooLarge(Exception):
    pass


class BodyTimedOut(FhirError):
    status, code = 408, "timeout"


class BodyTimeoutMiddleware:
    """408 (and the connection closed) when a client leaves `timeout` seconds between two
    parts of its body (CODOC_REQUEST_TIMEOUT): a slow or stalled upload cannot hold a
    worker forever. Once the body is complete, receive() is left alone (it then only
    waits for a disconnect). Reading the headers is bounded by the HTTP protocol itself
    (api/http_protocol.py).
    """

    def __init__(self, app: Any, timeout: float) -> None:
        self.app = app
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not self.timeout:
            await self.app(scope, receive, send)
            return
        complete = False

        async def timed_receive() -> Any:
            nonlocal complete
            if complete:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.timeout)
            except TimeoutError:
                raise BodyTimedOut(
                    f"The request body did not arrive within {self.timeout:g} s",
                    headers={"Connection": "close"},
                ) from None
            complete = message["type"] != "http.request" or not message.get("more_body")
            return message

        await self.app(scope, timed_receive, send)


class AccessLogWriter:
    """Writes access log rows from a background thread, in batches, off the request path.

    Rows that cannot be written (the database is away) are kept and written once it is
    back, oldest first; at most `max_pending` rows wait, and the number of rows dropped past
    that is logged (never the rows themselves).
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
        self.pending: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=max_pending)
        self.unwritten: list[dict[str, Any]] = []  # taken from the queue, write failed
        self.dropped = 0
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name="access-log", daemon=True)
        self.thread.start()

    def add(self, row: dict[str, Any]) -> None:
        try:
            self.pending.put_nowait(row)
        except queue.Full:
            with self.lock:
                self.dropped += 1

    def flush(self) -> bool:
        """Write every pending row now (at shutdown, by tests); False if the database
        refused them (they stay pending)."""
        with self.lock:
            rows = self.unwritten
            while True:
                try:
                    rows.append(self.pending.get_nowait())
                except queue.Empty:
                    break
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


class AccessLogMiddleware:
    """One access log row per request: who, from where, what, how it ended; never bodies."""

    def __init__(self, app: Any, writer: AccessLogWriter) -> None:
        self.app = app
        self.writer = writer

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = datetime.now(UTC)
        clock = time.perf_counter()
        status = 500

        async def record_status(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            self.writer.add(_log_row(scope, status, started, time.perf_counter() - clock))


def _header(headers: dict[bytes, bytes], name: bytes, limit: int) -> str | None:
    value = headers.get(name)
    return value.decode("latin-1")[:limit] if value is not None else None


_SECRET_PARAM = re.compile(r"(^|&)([^=&]*(?:token|secret|password)[^=&]*)=[^&]*", re.I)


def _redact(query: str) -> str:
    """The query string with the values of token-like parameters replaced (never logged)."""
    return _SECRET_PARAM.sub(r"\1\2=REDACTED", query)


def _log_row(scope: Scope, status: int, started: datetime, elapsed: float) -> dict[str, Any]:
    return access_row(scope, dict(scope["headers"]), status, started, elapsed)


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
