"""install_routes(): every route of the server, in the order that lets the specific ones win.

It lives apart from api/routes.py because every module of routes imports the route helpers
of routes.py: gathering them here keeps the imports one way (no cycle, none inside a
function).
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from codoc_fhir.api.bulk_export import install_export_routes
from codoc_fhir.api.bundles import install_bundle_routes
from codoc_fhir.api.capability import capability_statement
from codoc_fhir.api.codesystem_routes import install_concept_routes
from codoc_fhir.api.everything import install_everything_routes
from codoc_fhir.api.extract_phenotypes import install_extraction_routes
from codoc_fhir.api.history import install_history_routes
from codoc_fhir.api.plain_routes import PlainRoutes
from codoc_fhir.api.routes import BASE, Server, _add, _not_yet, _sub_path_routes, _type_routes
from codoc_fhir.api.search_routes import install_search_routes
from codoc_fhir.api.smart import install_smart_routes
from codoc_fhir.api.terminology import install_terminology_routes
from codoc_fhir.api.validate import install_validate_routes
from codoc_fhir.fhir.dates import utc_now
from codoc_fhir.fhir.responses import fhir_response
from codoc_fhir.resources.codesystem import CodeSystem
from codoc_fhir.resources.generic.resource import StoredResource


def install_routes(app: FastAPI, server: Server) -> None:
    """Every route of the server, from the registry; sub-paths first so they win."""
    statement = capability_statement(server.registry, server.settings)
    # Stored types (resources/generic) share plain routes: same interactions, no /docs page.
    app.state.plain_routes = PlainRoutes.of(
        [kind.fhir_type for kind in server.registry.kinds() if isinstance(kind, StoredResource)]
    )

    async def metadata(request: Request) -> Response:
        answer = dict(statement, date=utc_now().isoformat(timespec="seconds"))
        return fhir_response(request, answer)

    summary = "The CapabilityStatement: what the server supports (public; the health check)"
    _add(app, f"{BASE}/metadata", metadata, "GET", "Capabilities", summary=summary)
    install_smart_routes(app, server)
    install_bundle_routes(app, server)  # POST on the base URL: transaction and batch
    install_export_routes(app, server)  # $export: before `/Patient/{ident}`
    install_everything_routes(app, server)  # $everything: before `/Patient/{ident}`
    install_history_routes(app, server)  # `/procedure/_history`: before `/procedure/{ident}`
    install_validate_routes(app, server)
    install_terminology_routes(app, server)  # `/CodeSystem/$lookup`: before `/CodeSystem/{ident}`
    install_extraction_routes(app, server)  # $extract-phenotypes (research, section 11)
    install_search_routes(app, server)  # before `/encounter/{ident}` so sub-paths win
    for kind in server.registry.sub_paths():
        _sub_path_routes(app, server, kind)
    for kind in server.registry.kinds():
        if isinstance(kind, CodeSystem):  # `/codesystem/{code}/concept/...`
            install_concept_routes(app, server, kind)
    for fhir_type in server.registry:
        _type_routes(app, server, fhir_type)
    r5 = _not_yet("FHIR R5 (5.0.0) is not available yet: use /v4.3.0/")
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        app.add_api_route(
            "/v5.0.0/{rest:path}",
            r5,
            methods=[method],
            include_in_schema=False,
            name=f"r5 {method}",
        )
