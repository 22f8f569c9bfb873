"""Route dispatch by resource type: find the routes of `/v4.3.0/<type>/...` in one lookup.

Starlette tries every route in order, each with a regular expression; with a few hundred
generated routes that linear scan cost more than a whole read of a resource. Here the routes
under the FHIR base whose second segment is a literal (`procedure`, `Procedure`, `metadata`)
are grouped by that segment, and a request only tries the routes of its own segment, in their
registration order. Other routes (`/docs`, `/v5.0.0/...`, the base itself) are untouched.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import Receive, Scope, Send

ROUTE_KEY = "codoc_fhir.route"


def _segment(path: str, prefix: str) -> str | None:
    """`procedure` for `/v4.3.0/procedure/12/`, None outside the prefix."""
    if not path.startswith(prefix):
        return None
    return path[len(prefix) :].split("/", 1)[0]


def route_path(scope: Scope) -> str:
    """The path routes match: without the root path a proxy serves the API under (uvicorn's
    `--root-path` puts it in front of `path` too)."""
    path, root = scope["path"], scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


class SegmentRoutes(BaseRoute):
    """The routes of one `/v4.3.0/<segment>`, tried only for paths of that segment."""

    def __init__(self, prefix: str, segment: str, routes: list[BaseRoute]) -> None:
        self.prefix = prefix
        self.segment = segment
        self.routes = routes

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http" or _segment(route_path(scope), self.prefix) != self.segment:
            return Match.NONE, {}
        partial: tuple[BaseRoute, Scope] | None = None
        for route in self.routes:
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                return Match.FULL, {**child_scope, ROUTE_KEY: route}
            if match is Match.PARTIAL and partial is None:
                partial = (route, child_scope)
        if partial is not None:
            return Match.PARTIAL, {**partial[1], ROUTE_KEY: partial[0]}
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await scope[ROUTE_KEY].handle(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        for route in self.routes:
            try:
                return route.url_path_for(name, **path_params)
            except NoMatchFound:
                continue
        raise NoMatchFound(name, path_params)


def group_routes_by_segment(app: FastAPI, prefix: str) -> None:
    """Replace the app's flat route list under `prefix` by one group per literal segment.

    The OpenAPI schema keeps being generated from the flat list.
    """
    flat = list(app.router.routes)
    grouped: list[BaseRoute] = []
    groups: dict[str, SegmentRoutes] = {}
    for route in flat:
        segment = _segment(getattr(route, "path", ""), prefix)
        if not segment or "{" in segment:
            grouped.append(route)
            continue
        if segment not in groups:
            groups[segment] = SegmentRoutes(prefix, segment, [])
            grouped.append(groups[segment])
        groups[segment].routes.append(route)
    app.router.routes = grouped
    _keep_openapi_flat(app, flat)


def _keep_openapi_flat(app: FastAPI, flat: list[BaseRoute]) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=flat,
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
