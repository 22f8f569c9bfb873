"""The HTTP server's side of the limits on a request head, for uvicorn and gunicorn alike.

uvicorn's h11 protocol bounds neither how long a client may take to send its request line
and headers (its keep-alive timer stops at the first byte received), nor answers an
oversized head with 414/431 (h11 only refuses with a 400). `BoundedH11Protocol` adds both:

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

import h11
import orjson
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.workers import UvicornWorker

from codoc_fhir.config import ROOT_PATH_VARIABLE, get_settings
from codoc_fhir.fhir.errors import operation_outcome

MAX_HEAD_BYTES = 16 * 1024
H11_MAX_EVENT_BYTES = MAX_HEAD_BYTES + 1024  # h11's own bound, for pipelined heads
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


class BoundedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline and a size limit on each request head."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.access_log = False
        self.head_timeout = get_settings().request_timeout
        self.head = bytearray()
        self.head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE and not self._head_fits(data):
            return
        super().data_received(data)

    def _head_fits(self, data: bytes) -> bool:
        """Count the bytes of a head being received; refuse it past MAX_HEAD_BYTES."""
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
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            if self.head:
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
        "http": BoundedH11Protocol,
        "h11_max_incomplete_event_size": H11_MAX_EVENT_BYTES,
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
