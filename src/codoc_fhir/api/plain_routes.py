"""The routes of the stored types (resources/generic): one route per path shape, shared.

A route costs FastAPI milliseconds to build (the endpoint's signature, its dependencies)
and Starlette one regular expression: for the ~130 stored types, each with the routes of
every interaction in both spellings, that was seconds at every start. Here every shape
(`/v4.3.0/<type>/{ident}`, `/v4.3.0/Patient/{patient_id}/<type>`...) is one plain Starlette
route whose type segment matches the stored types' names only, and which calls the endpoint
built for the type named, after the same scope check `_add` gives FastAPI routes. These
routes are left out of /docs (the CapabilityStatement lists the types).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from codoc_fhir.api.auth import authorize
from codoc_fhir.fhir.errors import NotFound

Endpoint = Callable[..., Awaitable[Response]]
TYPE_PARAM = "stored_type"


@dataclass
class PlainRoutes:
    """The stored types' names (both spellings) and, per (path shape, method), the endpoint
    of each type: (endpoint, FHIR type, interaction) by the segment sent."""

    tags: frozenset[str]
    handlers: dict[tuple[str, str], dict[str, tuple[Endpoint, str, str]]] = field(
        default_factory=dict
    )

    @classmethod
    def of(cls, names: Collection[str]) -> PlainRoutes:
        return cls(frozenset(names))

    @property
    def alternatives(self) -> str:
        spellings = sorted({*self.tags, *(name.lower() for name in self.tags)}, key=len)
        return "|".join(re.escape(name) for name in reversed(spellings))


def plain_routes_of(app: FastAPI) -> PlainRoutes | None:
    table = getattr(app.state, "plain_routes", None)
    return table if isinstance(table, PlainRoutes) else None


def add_plain_route(
    app: FastAPI,
    table: PlainRoutes,
    path: str,
    endpoint: Endpoint,
    method: str,
    tag: str,
    interaction: str,
) -> None:
    """Serve `path` (which names `tag`) through the shared route of its shape."""
    parts = path.split("/")
    position = max(index for index, part in enumerate(parts) if part in (tag, tag.lower()))
    segment = parts[position]
    parts[position] = "{" + TYPE_PARAM + "}"
    shape = "/".join(parts)
    key = (shape, method)
    if key not in table.handlers:
        table.handlers[key] = {}
        for variant in (shape, shape + "/"):
            app.router.routes.append(_route(variant, method, table.handlers[key], table))
    table.handlers[key][segment] = (endpoint, tag, interaction)


def _route(
    shape: str, method: str, handlers: dict[str, tuple[Endpoint, str, str]], table: PlainRoutes
) -> Route:
    async def handle(request: Request) -> Response:
        params: dict[str, Any] = dict(request.path_params)
        segment = params.pop(TYPE_PARAM)
        found = handlers.get(segment)
        if found is None:
            raise NotFound(f"No FHIR endpoint at {request.url.path!r}")
        endpoint, tag, interaction = found
        authorize(request, tag, interaction)
        return await endpoint(request, **params)

    route = Route(shape, handle, methods=[method], name=f"{method.lower()} {shape}")
    generic = f"(?P<{TYPE_PARAM}>[^/]+)"
    narrowed = route.path_regex.pattern.replace(generic, f"(?P<{TYPE_PARAM}>{table.alternatives})")
    route.path_regex = re.compile(narrowed)
    return route
