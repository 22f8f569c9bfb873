"""create_app(): the FastAPI application with its routes, middleware and error handlers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from starlette.middleware.cors import CORSMiddleware

from codoc_fhir import __version__
from codoc_fhir.api.auth import TokenVerifier
from codoc_fhir.api.dispatch import group_routes_by_segment
from codoc_fhir.api.docs import install_docs
from codoc_fhir.api.errors import install_error_handlers
from codoc_fhir.api.fast_create import FastCreate
from codoc_fhir.api.fast_read import FastRead
from codoc_fhir.api.fast_search import FastSearch
from codoc_fhir.api.front import Front
from codoc_fhir.api.install import install_routes
from codoc_fhir.api.middleware import AccessLogWriter
from codoc_fhir.api.origin import OriginPolicy
from codoc_fhir.api.ratelimit import build_rate_limiter
from codoc_fhir.api.routes import BASE, Server
from codoc_fhir.config import Settings, get_settings
from codoc_fhir.fhir.responses import FhirJSONResponse
from codoc_fhir.resources.fast_create import FastCreator
from codoc_fhir.resources.fast_read import FastReader
from codoc_fhir.resources.fast_search import FastSearcher
from codoc_fhir.resources.registry import build_registry
from codoc_fhir.warehouse.db import make_engine, server_secret

NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def create_app(settings: Settings | None = None) -> FastAPI:
    """The application for `settings` (default: from the environment)."""
    settings = settings or get_settings()
    engine = make_engine(settings.database_url, settings.statement_timeout)
    secret = None if settings.cursor_key else server_secret(engine, "cursor")
    registry = build_registry(settings, cursor_secret=secret)
    server = Server(engine=engine, registry=registry, settings=settings)
    writer = AccessLogWriter(engine) if settings.access_log else None
    reader = fast_reader(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if writer is not None:
            writer.flush()
        limiter = getattr(_app.state, "rate_limiter", None)
        if limiter is not None:
            await limiter.aclose()
        if reader is not None:
            await reader.close()
        engine.dispose()

    app = FastAPI(
        title="codoc-fhir",
        version=__version__,
        description="FHIR R4B (4.3.0) REST API over the Codoc clinical data warehouse.",
        default_response_class=FhirJSONResponse,
        redirect_slashes=False,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        # FastAPI's native OpenTelemetry asks for the global providers on every request
        # (2.5 % of a read's CPU, docs/PERFORMANCE.md); the server configures none.
        telemetry=NO_TELEMETRY,
    )
    app.state.server = server
    app.state.access_log = writer
    app.state.fast_reader = reader
    searcher = FastSearcher(reader) if reader else None
    app.state.fast_searcher = searcher
    creator = FastCreator(reader) if reader else None
    app.state.fast_create = FastCreate(server, f"{BASE}/", creator) if settings.fast_read else None
    install_error_handlers(app)
    install_routes(app, server)
    group_routes_by_segment(app, f"{BASE}/")
    install_docs(app, settings, [fhir_type.name for fhir_type in server.registry])
    install_front(
        app,
        settings,
        engine,
        writer,
        FastRead(reader, registry, f"{BASE}/") if reader else None,
        FastSearch(searcher, registry, f"{BASE}/") if searcher else None,
        app.state.fast_create,
    )
    return app


def fast_reader(settings: Settings) -> FastReader | None:
    """The async reader of PostgreSQL reads by id (api/fast_read.py), unless turned off.

    SQLite keeps the generic read: its driver has no asynchronous API and a read is a local
    file access of well under a millisecond, cheaper than a hand-off to the thread pool
    would save."""
    if not settings.fast_read or not settings.database_url.startswith("postgresql"):
        return None
    return FastReader(settings.database_url, settings.statement_timeout)


def install_front(
    app: FastAPI,
    settings: Settings,
    engine: Any,
    writer: AccessLogWriter | None,
    fast_read: FastRead | None,
    fast_search: FastSearch | None = None,
    fast_create: FastCreate | None = None,
) -> None:
    """Every check of a request, in one middleware (api/front.py), outermost first:
    forwarded headers, CORS, access log, Host check, body limit, body timeout, auth, rate
    limit, 401, 406, then the fast read, search or create.

    Forwarded headers are resolved first (only from trusted proxies), so the access log and
    the rate limit see the real client; CORS answers preflights before auth; the access
    log sees every answer (400, 401, 408, 413, 429 included) and the user the auth layer
    found; the rate limit counts per token subject, and failed authentications per client
    address, before their 401 is answered.
    """
    limiter = build_rate_limiter(settings, engine)
    app.state.rate_limiter = limiter  # closed by the lifespan
    origins = [origin.strip() for origin in settings.cors_origins.split(",") if origin.strip()]
    app.add_middleware(
        Front,
        policy=OriginPolicy.from_settings(settings),
        writer=writer,
        max_bytes=settings.max_body_bytes,
        transaction_bytes=settings.max_transaction_bytes,
        timeout=settings.request_timeout,
        verifier=TokenVerifier(settings) if settings.auth_enabled else None,
        limiter=limiter,
        fast_read=fast_read,
        fast_search=fast_search,
        fast_create=fast_create,
        prefix=f"{BASE}/",
        cors=partial(cors_middleware, origins=origins) if origins else None,
    )


def cors_middleware(app: Any, origins: list[str]) -> CORSMiddleware:
    """Starlette's CORS middleware for the allowed origins."""
    return CORSMiddleware(
        app,
        allow_origins=origins,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=["*"],
        expose_headers=[
            "ETag",
            "Location",
            "Last-Modified",
            "Content-Location",
            "Retry-After",
            "X-RateLimit-Limit",
            "X-RateLimit-Remaining",
        ],
        max_age=600,
    )
