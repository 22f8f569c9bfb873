"""create_app(): the FastAPI application with its routes, middleware and error handlers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from codoc_fhir import __version__
from codoc_fhir.api.errors import install_error_handlers
from codoc_fhir.api.middleware import AccessLogMiddleware, AccessLogWriter, BodyLimitMiddleware
from codoc_fhir.api.routes import Server, install_routes
from codoc_fhir.config import Settings, get_settings
from codoc_fhir.fhir.responses import FhirJSONResponse
from codoc_fhir.resources.registry import build_registry
from codoc_fhir.warehouse.db import make_engine


def create_app(settings: Settings | None = None) -> FastAPI:
    """The application for `settings` (default: from the environment)."""
    settings = settings or get_settings()
    engine = make_engine(settings.database_url)
    server = Server(engine=engine, registry=build_registry(settings), settings=settings)
    writer = AccessLogWriter(engine) if settings.access_log else None

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if writer is not None:
            writer.flush()
        engine.dispose()

    app = FastAPI(
        title="codoc-fhir",
        version=__version__,
        description="FHIR R4B (4.3.0) REST API over the Codoc clinical data warehouse.",
        default_response_class=FhirJSONResponse,
        redirect_slashes=False,
        lifespan=lifespan,
    )
    app.state.server = server
    app.state.access_log = writer
    install_error_handlers(app)
    install_routes(app, server)
    if writer is not None:
        app.add_middleware(AccessLogMiddleware, writer=writer)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    return app
