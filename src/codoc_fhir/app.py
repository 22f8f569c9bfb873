"""create_app(): the FastAPI application with its routes, middleware and error handlers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from codoc_fhir import __version__
from codoc_fhir.api.auth import AuthMiddleware, AuthRequiredMiddleware, TokenVerifier
from codoc_fhir.api.dispatch import group_routes_by_segment
from codoc_fhir.api.docs import install_docs
from codoc_fhir.api.errors import install_error_handlers
from codoc_fhir.api.install import install_routes
from codoc_fhir.api.middleware import (
    AccessLogMiddleware,
    AccessLogWriter,
    BodyLimitMiddleware,
    BodyTimeoutMiddleware,
    NegotiationMiddleware,
)
from codoc_fhir.api.origin import ForwardedMiddleware, HostCheckMiddleware, OriginPolicy
from codoc_fhir.api.ratelimit import RateLimitMiddleware, build_rate_limiter
from codoc_fhir.api.routes import BASE, Server
from codoc_fhir.config import Settings, get_settings
from codoc_fhir.fhir.responses import FhirJSONResponse
from codoc_fhir.resources.registry import build_registry
from codoc_fhir.warehouse.db import make_engine, server_secret


def create_app(settings: Settings | None = None) -> FastAPI:
    """The application for `settings` (default: from the environment)."""
    settings = settings or get_settings()
    engine = make_engine(settings.database_url, settings.statement_timeout)
    secret = None if settings.cursor_key else server_secret(engine, "cursor")
    registry = build_registry(settings, cursor_secret=secret)
    server = Server(engine=engine, registry=registry, settings=settings)
    writer = AccessLogWriter(engine) if settings.access_log else None

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if writer is not None:
            writer.flush()
        limiter = getattr(_app.state, "rate_limiter", None)
        if limiter is not None:
            await limiter.aclose()
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
    )
    app.state.server = server
    app.state.access_log = writer
    install_error_handlers(app)
    install_routes(app, server)
    group_routes_by_segment(app, f"{BASE}/")
    install_docs(app, settings, [fhir_type.name for fhir_type in server.registry])
    app.add_middleware(NegotiationMiddleware, prefix=f"{BASE}/")
    install_security(app, settings, engine, writer)
    return app


def install_security(
    app: FastAPI, settings: Settings, engine: Any, writer: AccessLogWriter | None
) -> None:
    """The middleware stack, outermost first: forwarded headers, CORS, access log, Host
    check, body limit, body timeout, auth, rate limit, 401.

    Forwarded headers are resolved first (only from trusted proxies), so the access log and
    the rate limit see the real client; CORS answers preflights before auth; the access
    log sees every answer (400, 401, 408, 413, 429 included) and the user the auth layer
    found; the rate limit counts per token subject, and failed authentications per client
    address, before their 401 is answered.
    """
    policy = OriginPolicy.from_settings(settings)
    app.add_middleware(AuthRequiredMiddleware)
    limiter = build_rate_limiter(settings, engine)
    app.state.rate_limiter = limiter  # closed by the lifespan
    if limiter is not None:
        app.add_middleware(RateLimitMiddleware, limiter=limiter)
    verifier = TokenVerifier(settings) if settings.auth_enabled else None
    app.add_middleware(AuthMiddleware, verifier=verifier)
    app.add_middleware(BodyTimeoutMiddleware, timeout=settings.request_timeout)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        transaction_bytes=settings.max_transaction_bytes,
    )
    app.add_middleware(HostCheckMiddleware, policy=policy)
    if writer is not None:
        app.add_middleware(AccessLogMiddleware, writer=writer)
    origins = [origin.strip() for origin in settings.cors_origins.split(",") if origin.strip()]
    if origins:
        app.add_middleware(
            CORSMiddleware,
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
    app.add_middleware(ForwardedMiddleware, policy=policy)
