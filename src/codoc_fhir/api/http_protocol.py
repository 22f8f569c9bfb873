"""The HTTP server's side of the limits on a request head, for uvicorn and gunicorn alike.

uvicorn's HTTP protocols bound neither how long a client may take to send its request line
and headers (their keep-alive timer stops at the first byte received), nor answer an
oversized head with 414/431. `BoundedHttpToolsProtocol` adds both to uvicorn's httptools
protocol (llhttp, the C parser: measured faster than h11, docs/PERFORMANCE.md):

- the head must arrive within CODOC_REQUEST_TIMEOUT seconds of the connection opening
  (or of the first byte of a later request on a kept-alive connection), else 408 and close;
- request line + headers up to 16 KiB: a longer request line is 414, longer headers 431.

Neither server's own access log is kept: it would print query strings (tokens in
`?access_token=`, search values) that the application's access log redacts.
`serve` runs uvicorn with this protocol and `Worker` is the gunicorn worker class doing
the same; both leave X-Forwarded-* to the application (api/origin.py), which only believes
them from CODOC_TRUSTED_PROXIES.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.workers import UvicornWorker

from codoc_fhir.config import ROOT_PATH_VARIABLE, get_settings
from codoc_fhir.fhir.errors import operation_outcome

MAX_HEAD_BYTES = 16 * 1024
REASONS = {408: "Request Timeout", 414: "URI Too Long", 431: "Request Header Fields Too Large"}


def raw_outcome(status: int, code: str, diagnostics: str) -> bytes:
    """A complete HTTP/1.1 answer written straight to the socket (no request was parsed)."""
    body = orjson.dumps(operation_outcome(code, diagnostics))
    head = (
        f"HTTP/1.1 {status} {REASONS[status]}\r\n"
        "content-type: application/fhir+json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class CoalescedTransport:
    """The connection's transport, its writes of one event-loop turn sent as one.

    uvicorn writes an answer's status line and headers, then its body, each with its own
    `transport.write`: two sends, two packets, and the receiving side woken twice, for every
    answer. Here the writes of a turn are joined and sent by a callback at its end, in the
    order written. Everything else goes to the transport; closing sends what is pending
    first, aborting drops it."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(data)

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def _flush(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending = []
        if not self._transport.is_closing():
            self._transport.write(data)

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending = []
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline and a size limit on each request head.

    A head is being read from the connection's opening, and again from the end of each
    request's message (the next bytes are the next request's head) until the parser calls
    `on_headers_complete`. The bytes of a head are counted before the parser sees them, so
    an oversized one is refused before anything of it reaches the application.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.access_log = False
        self.head_timeout = get_settings().request_timeout
        self.head = bytearray()
        self.head_deadline: asyncio.TimerHandle | None = None
        self.reading_head = True

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = CoalescedTransport(transport, self.loop)  # type: ignore[assignment]
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.reading_head and not self._head_fits(data):
            return
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self.reading_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self.reading_head = True
        super().on_message_complete()

    def _head_fits(self, data: bytes) -> bool:
        """Count the bytes of a head being received; refuse it past MAX_HEAD_BYTES."""
        if not self.head and data.find(b"\r\n\r\n", 0, MAX_HEAD_BYTES) >= 0:
            self._disarm()  # the usual case: a whole head in one read, nothing to keep
            return True
        if self.head_deadline is None:
            self._arm()
        self.head += data
        end = self.head.find(b"\r\n\r\n")
        size = end + 4 if end >= 0 else len(self.head)
        if size > MAX_HEAD_BYTES:
            line_ended = b"\r\n" in self.head[: MAX_HEAD_BYTES + 2]
            status = 431 if line_ended else 414
            part = "headers" if line_ended else "request line"
            self._refuse(status, f"The {part} of the request exceed {MAX_HEAD_BYTES} bytes")
            return False
        if end >= 0:
            self.head.clear()
            self._disarm()
        return True

    def _arm(self) -> None:
        self._disarm()
        if self.head_timeout:
            self.head_deadline = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _disarm(self) -> None:
        if self.head_deadline is not None:
            self.head_deadline.cancel()
            self.head_deadline = None

    def _head_timed_out(self) -> None:
        self.head_deadline = None
        if not self.reading_head or self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self._arm()  # a pipelined head waits for the answer before it: not the client's fault
        elif self.head:
            message = f"The request headers did not arrive within {self.head_timeout:g} s"
            self._refuse(408, message)
        else:  # an idle connection: nothing was asked, nothing to answer
            self.transport.close()

    def _refuse(self, status: int, diagnostics: str) -> None:
        self._disarm()
        self.head.clear()
        code = "timeout" if status == 408 else "too-costly"
        self.logger.info("refused a request head: %s", diagnostics)
        self.transport.write(raw_outcome(status, code, diagnostics))
        self.transport.close()


def server_options() -> dict[str, Any]:
    """The uvicorn settings `serve` uses, with one worker or under gunicorn."""
    return {
        "http": BoundedHttpToolsProtocol,
        "proxy_headers": False,
        "access_log": False,
    }


class Worker(UvicornWorker):
    """The gunicorn worker class of `serve --workers N`. gunicorn builds each worker's
    uvicorn config from its own settings, which have no root path: `serve` puts
    `--root-path` in CODOC_ROOT_PATH before gunicorn starts, and it is read here."""

    CONFIG_KWARGS = {
        "loop": "auto",
        **server_options(),
        "root_path": os.environ.get(ROOT_PATH_VARIABLE, ""),
    }
