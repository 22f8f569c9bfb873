"""The front of the application: every check a request passes, in one ASGI middleware.

It replaces a chain of ten middlewares (forwarded headers, access log, Host check, body
limit, body timeout, auth, rate limit, 401, 406, fast read) that each read the headers
again, wrapped `send` or `receive` in a closure of their own and added an await to every
message. The checks, their order and their answers are the chain's:

1. X-Forwarded-* believed from trusted proxies only; the public host and origin recorded
   (api/origin.py); CORS, when configured, answers next (preflights before auth);
2. the access log row, for every answer (api/middleware.py);
3. Host check (400), then a body announced too large (413);
4. the bearer token (the principal in the request state), then the rate limit (429, and
   X-RateLimit-* on every later answer), then the 401 of a failed authentication;
5. 406 under the FHIR base when the client accepts no JSON;
6. the fast read by id (api/fast_read.py), the fast search (api/fast_search.py), the fast
   create (api/fast_create.py, which reads the body under the same limit and timeout), else
   the application, with the body limit and the body timeout on its `receive`.

The headers are read once (one dict; the first value where a check reads the first), and
a read answered by the fast path allocates no wrapper of `send` or `receive`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

from codoc_fhir.api.auth import (
    Principal,
    TokenVerifier,
    Unauthorized,
    is_public,
    missing_token,
    send_error,
)
from codoc_fhir.api.fast_create import FastCreate
from codoc_fhir.api.fast_read import FastRead
from codoc_fhir.api.fast_search import FastSearch
from codoc_fhir.api.middleware import (
    AccessLogWriter,
    BodyTimedOut,
    _query_value,
    _send_outcome,
    access_row,
)
from codoc_fhir.api.origin import OriginPolicy, _all, _first, _local_host
from codoc_fhir.api.ratelimit import RateLimiter, _exempt, _send_throttled
from codoc_fhir.fhir.errors import FhirError
from codoc_fhir.fhir.responses import check_acceptable
from codoc_fhir.resources.registry import Address

Scope = dict[str, Any]
log = logging.getLogger("codoc_fhir.ratelimit")
CACHE_SIZE = 256  # Host and Accept values remembered (bounded: clients choose them)
FOREIGN_HOST = "The Host of the request is not one this server answers under"


class _Answer:
    """The `send` the application gets: records the status, adds the rate-limit headers."""

    __slots__ = ("extra", "send", "status")

    def __init__(self, send: Any, extra: list[tuple[bytes, bytes]] | None) -> None:
        self.send = send
        self.extra = extra
        self.status = 500

    async def __call__(self, message: Any) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            if self.extra:
                message = dict(message, headers=[*message.get("headers", []), *self.extra])
        await self.send(message)


class _BodyTooLarge(Exception):
    pass


class _Body:
    """The `receive` the application gets: 408 when a part of the body takes longer than
    the timeout to come (until the body is complete), 413 past the size limit."""

    __slots__ = ("complete", "limit", "receive", "received", "timeout")

    def __init__(self, receive: Any, limit: int, timeout: float) -> None:
        self.receive = receive
        self.limit = limit
        self.timeout = timeout
        self.received = 0
        self.complete = False

    async def __call__(self) -> Any:
        if self.complete or not self.timeout:
            message = await self.receive()
        else:
            try:
                message = await asyncio.wait_for(self.receive(), self.timeout)
            except TimeoutError:
                raise BodyTimedOut(
                    f"The request body did not arrive within {self.timeout:g} s",
                    headers={"Connection": "close"},
                ) from None
            self.complete = message["type"] != "http.request" or not message.get("more_body")
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                raise _BodyTooLarge()
        return message


async def _read_body(receive: _Body) -> bytes | None:
    """The whole request body, None when the client disconnected first."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


class _Replay:
    """The `receive` of a request whose body was already read: the body, then whatever
    comes next (a disconnect)."""

    __slots__ = ("body", "receive")

    def __init__(self, body: bytes, receive: Any) -> None:
        self.body: bytes | None = body
        self.receive = receive

    async def __call__(self) -> Any:
        if self.body is None:
            return await self.receive()
        body, self.body = self.body, None
        return {"type": "http.request", "body": body, "more_body": False}


class Front:
    """The checks of every request, outermost first (see the module docstring)."""

    def __init__(
        self,
        app: Any,
        *,
        policy: OriginPolicy,
        writer: AccessLogWriter | None,
        max_bytes: int,
        transaction_bytes: int | None,
        timeout: float,
        verifier: TokenVerifier | None,
        limiter: RateLimiter | None,
        fast_read: FastRead | None,
        prefix: str,
        cors: Any = None,
        fast_search: FastSearch | None = None,
        fast_create: FastCreate | None = None,
    ) -> None:
        self.app = app
        self.policy = policy
        self.writer = writer
        self.max_bytes = max_bytes
        self.transaction_bytes = transaction_bytes or max_bytes
        self.transaction_path = prefix.rstrip("/")
        self.timeout = timeout
        self.verifier = verifier
        self.limiter = limiter
        self.fast_read = fast_read
        self.fast_search = fast_search
        self.fast_create = fast_create
        self.prefix = prefix
        # CORS sits between the forwarded headers and the rest, as it did in the chain.
        self.after_forwarded = cors(self.checked) if cors is not None else self.checked
        self.hosts: dict[str, bool] = {}
        self.acceptable: dict[bytes, FhirError | None] = {}

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http" or kind == "websocket":
            headers = scope["headers"]
            named = dict(headers)  # the last value of each name, as the chain read them
            first = named if len(named) == len(headers) else dict(reversed(headers))
            self._resolve(scope, first)
            scope["codoc_fhir.headers"] = named, first
        await self.after_forwarded(scope, receive, send)

    def _resolve(self, scope: Scope, first: dict[bytes, bytes]) -> None:
        """X-Forwarded-* from trusted proxies only (api/origin.py): the public host and origin."""
        raw = first.get(b"host")
        host = (raw.decode("latin-1").split(",")[0].strip() or None) if raw else None
        host = host or _local_host(scope)
        scheme = scope.get("scheme", "http")
        peer = scope.get("client")
        if self.policy.proxies and peer and self.policy.trusts(peer[0]):
            headers = scope["headers"]
            forwarded_for = _all(headers, b"x-forwarded-for")
            if forwarded_for:
                scope["client"] = (self.policy.client_of(forwarded_for, peer[0]), 0)
            proto = (_first(headers, b"x-forwarded-proto") or "").lower()
            if proto in ("http", "https"):
                scope["scheme"] = scheme = proto
            host = _first(headers, b"x-forwarded-host") or host
        state = scope.setdefault("state", {})
        state["public_host"] = host
        root = scope.get("root_path", "").rstrip("/")
        state["public_origin"] = self.policy.base_url or f"{scheme}://{host}{root}"

    async def checked(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.writer is None:
            await self._answer(scope, receive, send)
            return
        started = datetime.now(UTC)
        clock = time.perf_counter()
        answer = _Answer(send, None)
        try:
            await self._answer(scope, receive, answer)
        finally:
            named = scope["codoc_fhir.headers"][0]
            elapsed = time.perf_counter() - clock
            self.writer.add(access_row(scope, named, answer.status, started, elapsed))

    async def _answer(self, scope: Scope, receive: Any, send: Any) -> None:
        """Host, body size, auth, rate limit, 401, 406, then the read or the application."""
        named, first = scope["codoc_fhir.headers"]
        state = scope["state"]
        if not self._host_allowed(state["public_host"], scope.get("server")):
            await _send_outcome(send, 400, "invalid", FOREIGN_HOST)
            return
        limit = self._body_limit(scope)
        announced = named.get(b"content-length")
        if announced is not None and (not announced.isdigit() or int(announced) > limit):
            await _send_outcome(send, 413, "too-costly", f"Request body larger than {limit} bytes")
            return
        self._authenticate(scope, state, named)
        extra: list[tuple[bytes, bytes]] | None = None
        if self.limiter is not None and not _exempt(scope):
            extra = await self._rate_limit(scope, state, send)
            if extra is None:
                return
        error = state.get("auth_error")
        if error is None and scope["path"].startswith(self.prefix):
            error = self._not_acceptable(named.get(b"accept", b""), scope.get("query_string"))
        if error is not None:
            await send_error(_Answer(send, extra), error)
            return
        accept = first.get(b"accept", b"")
        if await self._fast(scope, send, accept, extra):
            return
        body = _Body(receive, limit, self.timeout)
        address = self.fast_create.target(scope, named) if self.fast_create else None
        if address is None:
            await self._application(scope, body, send, limit, extra)
            return
        replay = await self._create(scope, body, send, address, accept, extra, limit)
        if replay is not None:
            await self._application(scope, replay, send, limit, extra)

    async def _fast(
        self, scope: Scope, send: Any, accept: bytes, extra: list[tuple[bytes, bytes]] | None
    ) -> bool:
        """Whether the fast read or the fast search answered (a query string: a search)."""
        if scope.get("query_string"):
            return self.fast_search is not None and await self.fast_search.answered(
                scope, send, accept, extra
            )
        return self.fast_read is not None and await self.fast_read.answered(
            scope, send, accept, extra
        )

    async def _create(
        self,
        scope: Scope,
        receive: _Body,
        send: Any,
        address: Address,
        accept: bytes,
        extra: Any,
        limit: int,
    ) -> _Replay | None:
        """The fast create (api/fast_create.py) of the body: None once answered, else the
        `receive` that gives the application the body read here."""
        assert self.fast_create is not None
        try:
            body = await _read_body(receive)
        except _BodyTooLarge:
            await _send_outcome(send, 413, "too-costly", f"Request body larger than {limit} bytes")
            return None
        except BodyTimedOut as error:
            await send_error(_Answer(send, extra), error)
            return None
        if body is None:  # the client went away
            return None
        if await self.fast_create.answered(scope, address, body, send, accept, extra):
            return None
        return _Replay(body, receive)

    async def _application(
        self, scope: Scope, receive: Any, send: Any, limit: int, extra: Any
    ) -> None:
        try:
            await self.app(scope, receive, _Answer(send, extra))
        except _BodyTooLarge:
            await _send_outcome(send, 413, "too-costly", f"Request body larger than {limit} bytes")

    def _host_allowed(self, host: str, local: Any) -> bool:
        """OriginPolicy.allows, remembered for the names allowed whatever the local address."""
        if self.hosts.get(host):
            return True
        allowed = self.policy.allows(host, None)
        if allowed and len(self.hosts) < CACHE_SIZE:
            self.hosts[host] = True
        return allowed or self.policy.allows(host, local[0] if local else None)

    def _body_limit(self, scope: Scope) -> int:
        if scope["method"] == "POST" and scope["path"].rstrip("/") == self.transaction_path:
            return self.transaction_bytes
        return self.max_bytes

    def _authenticate(self, scope: Scope, state: dict[str, Any], named: Any) -> None:
        """The bearer token (api/auth.py): the principal, or the 401 to answer after the
        rate limit has counted the failure against the client address."""
        state["user_id"] = "anonymous"
        state["principal"] = None
        if self.verifier is None or scope["method"] == "OPTIONS":
            return
        try:
            principal = self._principal(named.get(b"authorization", b""))
        except Unauthorized as error:
            if not is_public(scope["path"]):
                state["auth_error"] = error
            return
        state["principal"] = principal
        state["user_id"] = principal.subject

    def _principal(self, raw: bytes) -> Principal:
        assert self.verifier is not None
        header = raw.decode("latin-1").strip()
        kind, _, token = header.partition(" ")
        if not header or kind.lower() != "bearer" or not token.strip():
            raise missing_token()
        return self.verifier.verify(token.strip())

    async def _rate_limit(
        self, scope: Scope, state: dict[str, Any], send: Any
    ) -> list[tuple[bytes, bytes]] | None:
        """The X-RateLimit-* headers of the answer ([] when not counted); None once a 429
        was answered."""
        assert self.limiter is not None
        principal = state.get("principal")
        if principal is not None:
            key, limit = f"sub:{principal.subject}", self.limiter.authenticated
        else:
            client = scope.get("client")
            key, limit = f"ip:{client[0] if client else 'unknown'}", self.limiter.anonymous
        if limit is None:
            return []
        try:
            remaining, retry_after = await self.limiter.check_async(key, limit)
        except Exception:  # the counter store is down: serve rather than refuse everyone
            log.exception("rate limit counter unavailable; request let through")
            return []
        headers = [
            (b"x-ratelimit-limit", str(limit.count).encode()),
            (b"x-ratelimit-remaining", str(max(remaining, 0)).encode()),
        ]
        if remaining < 0:
            await _send_throttled(send, limit, retry_after, headers)
            return None
        return headers

    def _not_acceptable(self, accept: bytes, query: bytes | None) -> FhirError | None:
        """The 406 of a request accepting no JSON (`Accept`, `_format`), else None."""
        wanted = _query_value(query, "_format") if query else None
        if wanted is None and accept in self.acceptable:
            return self.acceptable[accept]
        try:
            check_acceptable(accept.decode("latin-1"), wanted)
            error = None
        except FhirError as refused:
            error = refused
        if wanted is None and len(self.acceptable) < CACHE_SIZE:
            self.acceptable[accept] = error
        return error
