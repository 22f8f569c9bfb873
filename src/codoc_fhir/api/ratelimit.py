"""Rate limiting shared by every worker process: fixed windows counted in a memory-mapped
file shared by the processes of the machine (api/ratelimit_local.py, the default), in Redis
(INCR + EXPIRE, one round trip; needed when several machines serve one database) or in
the database (an atomic upsert on fhir_rate_limit: a write per request, the slowest).

Anonymous requests are counted per client address, authenticated ones per token subject
(api/front.py authenticates first and leaves the principal in the request state). Over the
limit: 429 with Retry-After and an OperationOutcome `throttled`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import re
import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from sqlalchemy import Engine, delete
from sqlalchemy.dialects import postgresql, sqlite
from starlette.concurrency import run_in_threadpool

from codoc_fhir import FHIR_VERSION
from codoc_fhir.api.dispatch import route_path
from codoc_fhir.api.ratelimit_local import LocalCounter
from codoc_fhir.config import Settings
from codoc_fhir.fhir.errors import operation_outcome
from codoc_fhir.warehouse.schema import fhir_rate_limit

if TYPE_CHECKING:
    import redis
    import redis.asyncio

Scope = dict[str, Any]
log = logging.getLogger("codoc_fhir.ratelimit")

ASYNC_CONNECTIONS = 32  # per worker process: each request holds one for a round trip
PERIODS = {"second": 1, "minute": 60, "hour": 3600}
EXEMPT_PREFIXES = ("/docs", "/openapi.json")
EXEMPT_PATHS = (f"/v{FHIR_VERSION}/metadata", f"/v{FHIR_VERSION}/metadata/")
_LIMIT = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour)s?\s*$")


@dataclass(frozen=True)
class Limit:
    """At most `count` requests per `period` seconds."""

    count: int
    period: int


def parse_limit(text: str) -> Limit | None:
    """`100/hour`, `5/minute`, `2/second` as a Limit; `off` (or empty) as None."""
    if text.strip().lower() in ("", "off", "none", "0"):
        return None
    match = _LIMIT.match(text.lower())
    if match is None:
        raise ValueError(f"Invalid rate limit {text!r}: use N/second, N/minute, N/hour or off")
    return Limit(int(match.group(1)), PERIODS[match.group(2)])


class Counter(Protocol):
    def hit(self, key: str, window_start: int, period: int) -> int:
        """Count one request in the window and answer the count so far (this one included)."""
        ...

    async def hit_async(self, key: str, window_start: int, period: int) -> int:
        """The same from the event loop (the middleware's path)."""
        ...

    async def aclose(self) -> None:
        """Let go of the store's files or connections (at application shutdown)."""
        ...


class DatabaseCounter:
    """Counters in fhir_rate_limit: one atomic INSERT ... ON CONFLICT DO UPDATE ... RETURNING."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
        self.insert = dialect.insert

    def hit(self, key: str, window_start: int, period: int) -> int:
        statement = self.insert(fhir_rate_limit).values(
            bucket_key=key, window_start=window_start, request_count=1
        )
        statement = statement.on_conflict_do_update(
            index_elements=["bucket_key", "window_start"],
            set_={"request_count": fhir_rate_limit.c.request_count + 1},
        ).returning(fhir_rate_limit.c.request_count)
        with self.engine.begin() as conn:
            count = int(conn.execute(statement).scalar_one())
            if random.random() < 0.01:  # now and then, forget windows long gone
                old = window_start - max(PERIODS.values())
                conn.execute(delete(fhir_rate_limit).where(fhir_rate_limit.c.window_start < old))
        return count

    async def hit_async(self, key: str, window_start: int, period: int) -> int:
        """Synchronous SQLAlchemy: in the thread pool, off the event loop."""
        return await run_in_threadpool(self.hit, key, window_start, period)

    async def aclose(self) -> None:
        """Nothing: the engine belongs to the application, which disposes of it."""


class RedisCounter:
    """Counters in Redis: INCR and EXPIRE in one MULTI pipeline, one round trip.

    The middleware uses the asyncio client (one per event loop: its connections belong to
    the loop that opened them); `hit` uses a synchronous one, for threads and tools. The
    asyncio pool waits for a free connection (up to 2 s) rather than failing a burst.
    """

    def __init__(self, url: str, prefix: str = "codoc-fhir:rate:") -> None:
        # Imported here, not at the top: redis costs 0.2 s of start-up to servers without it.
        import redis
        import redis.asyncio

        options: dict[str, Any] = {"socket_timeout": 2, "socket_connect_timeout": 2}
        self.client = redis.Redis.from_url(url, **options)
        self.prefix = prefix
        self._new_async_client = lambda: redis.asyncio.Redis.from_pool(
            redis.asyncio.BlockingConnectionPool.from_url(
                url, max_connections=ASYNC_CONNECTIONS, timeout=2, **options
            )
        )
        self._async_clients: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, redis.asyncio.Redis
        ] = weakref.WeakKeyDictionary()

    def hit(self, key: str, window_start: int, period: int) -> int:
        name = f"{self.prefix}{key}:{window_start}"
        pipe = self.client.pipeline(transaction=True)
        pipe.incr(name)
        pipe.expire(name, period + 5)
        count, _ = pipe.execute()
        return int(count)

    async def hit_async(self, key: str, window_start: int, period: int) -> int:
        name = f"{self.prefix}{key}:{window_start}"
        pipe = self._async_client().pipeline(transaction=True)
        pipe.incr(name)
        pipe.expire(name, period + 5)
        count, _ = await pipe.execute()
        return int(count)

    def _async_client(self) -> redis.asyncio.Redis:
        loop = asyncio.get_running_loop()
        client = self._async_clients.get(loop)
        if client is None:
            client = self._async_clients[loop] = self._new_async_client()
        return client

    async def aclose(self) -> None:
        """Close the current loop's connections and the synchronous client's."""
        client = self._async_clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()
        self.client.close()


class RateLimiter:
    """Decides, per request key, whether the request is within its limit."""

    def __init__(self, counter: Counter, anonymous: Limit | None, authenticated: Limit | None):
        self.counter = counter
        self.anonymous = anonymous
        self.authenticated = authenticated

    def check(self, key: str, limit: Limit, now: float | None = None) -> tuple[int, int]:
        """(remaining requests, seconds until the window ends); remaining < 0: over."""
        now = time.time() if now is None else now
        window_start = int(now // limit.period) * limit.period
        count = self.counter.hit(f"{key}:{limit.period}", window_start, limit.period)
        return limit.count - count, _retry_after(window_start, limit, now)

    async def check_async(self, key: str, limit: Limit) -> tuple[int, int]:
        """check() from the event loop: no thread hand-off unless the store needs one."""
        now = time.time()
        window_start = int(now // limit.period) * limit.period
        count = await self.counter.hit_async(f"{key}:{limit.period}", window_start, limit.period)
        return limit.count - count, _retry_after(window_start, limit, now)

    async def aclose(self) -> None:
        """Let go of the store (at application shutdown)."""
        await self.counter.aclose()


def _retry_after(window_start: int, limit: Limit, now: float) -> int:
    """Whole seconds until the window ends, at least 1."""
    return max(1, math.ceil(window_start + limit.period - now))


def configured_limit(settings: Settings, name: str) -> Limit | None:
    """The limit of setting `name` (`rate_limit_anonymous`...), None when off.

    Unset on the embedded SQLite database with auth off means off: the defaults protect a
    served database from its many clients, not a local demo from its one user.
    """
    embedded = settings.database_url.startswith("sqlite") and not settings.auth_enabled
    if embedded and name not in settings.model_fields_set:
        return None
    return parse_limit(getattr(settings, name))


def build_rate_limiter(settings: Settings, engine: Engine) -> RateLimiter | None:
    """The limiter the settings ask for, or None when both limits are off."""
    anonymous = configured_limit(settings, "rate_limit_anonymous")
    authenticated = configured_limit(settings, "rate_limit_authenticated")
    if anonymous is None and authenticated is None:
        return None
    return RateLimiter(build_counter(settings, engine), anonymous, authenticated)


def build_counter(settings: Settings, engine: Engine) -> Counter:
    """The counter store of CODOC_RATE_LIMIT_STORE; unset: Redis when CODOC_REDIS_URL is
    set, else the local file. A local file that cannot be made (no writable directory, a
    file of another user in the way) falls back to the database, shared and exact too."""
    store = settings.rate_limit_store or ("redis" if settings.redis_url else "local")
    if store == "redis":
        if not settings.redis_url:
            raise ValueError("CODOC_RATE_LIMIT_STORE=redis needs CODOC_REDIS_URL")
        return RedisCounter(settings.redis_url)
    if store == "local":
        try:
            return LocalCounter.for_database(settings.database_url, settings.rate_limit_dir)
        except OSError as error:
            log.warning("rate-limit counters in the database: no local counter file (%s)", error)
    return DatabaseCounter(engine)


def _exempt(scope: Scope) -> bool:
    """Whether the request is one the limits never count (docs, the CapabilityStatement)."""
    path = route_path(scope)
    return path in EXEMPT_PATHS or path.startswith(EXEMPT_PREFIXES)


async def _send_throttled(
    send: Any, limit: Limit, retry_after: int, headers: list[tuple[bytes, bytes]]
) -> None:
    diagnostics = (
        f"Rate limit exceeded: at most {limit.count} requests per {limit.period} s; "
        f"retry in {retry_after} s"
    )
    body = orjson.dumps(operation_outcome("throttled", diagnostics))
    all_headers = [
        (b"content-type", b"application/fhir+json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(retry_after).encode()),
        *headers,
    ]
    await send({"type": "http.response.start", "status": 429, "headers": all_headers})
    await send({"type": "http.response.body", "body": body})
