"""History and vread routes: `/Type/{id}/_history[/{vid}]`, `/Type/_history`, `/_history`.

The interactions (and their scopes) are interactions/history.py's; here the request is
read and the Bundle sent. The Codoc paths (`/procedure/12/_history/1/`) and sub-paths
answer the same.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from codoc_fhir.api.docs import custom_doc
from codoc_fhir.api.routes import (
    BASE,
    Server,
    _add,
    answer_resource,
    check_format,
    sub_path_address,
    type_addresses,
)
from codoc_fhir.api.visibility import caller_of
from codoc_fhir.fhir.responses import fhir_response
from codoc_fhir.interactions import history
from codoc_fhir.resources.registry import Address

# --- routes --------------------------------------------------------------------------------


def _self_url(request: Request) -> str:
    """The self URL of a request, without the query."""
    return f"{request.url.scheme}://{request.url.netloc}" + request.url.path.rstrip("/")


def _pairs(request: Request) -> list[tuple[str, str]]:
    return list(request.query_params.multi_items())


def _instance_endpoint(server: Server, path: Address) -> Any:
    async def instance(request: Request, ident: str) -> Response:
        check_format(request)
        bundle = await run_in_threadpool(
            history.resource_history,
            server,
            caller_of(request),
            replace(path, key=ident),
            _pairs(request),
            _self_url(request),
        )
        return fhir_response(request, bundle)

    return instance


def _vread_endpoint(server: Server, path: Address) -> Any:
    async def version_read(request: Request, ident: str, vid: str) -> Response:
        check_format(request)
        address = replace(path, key=ident)
        resource = await run_in_threadpool(history.vread, server, caller_of(request), address, vid)
        return answer_resource(request, resource)

    return version_read


def _type_endpoint(server: Server, path: Address | None) -> Any:
    async def every(request: Request) -> Response:
        check_format(request)
        bundle = await run_in_threadpool(
            history.type_history,
            server,
            caller_of(request),
            path,
            _pairs(request),
            _self_url(request),
        )
        return fhir_response(request, bundle)

    return every


def _routes(app: FastAPI, server: Server, path: str, target: Address, tag: str, show: bool) -> None:
    every = custom_doc(f"Versions of every {tag}, newest first (a history Bundle)", "Bundle")
    _add(app, f"{path}/_history", _type_endpoint(server, target), "GET", tag, show, every)
    item = path + "/{ident}/_history"
    one = custom_doc(f"Versions of one {tag}, newest first (a history Bundle)", "Bundle")
    _add(app, item, _instance_endpoint(server, target), "GET", tag, show, one)
    _add(app, item + "/{vid}", _vread_endpoint(server, target), "GET", tag, show)


def install_history_routes(app: FastAPI, server: Server) -> None:
    """Every history route; call before the instance routes (`/procedure/{ident}`) and the
    Codoc sub-paths' routes go first, so that `/encounter/movement/_history` is theirs."""
    registry = server.registry
    for kind in registry.sub_paths():
        path = f"{BASE}/{kind.codoc_path}"
        _routes(app, server, path, sub_path_address(registry, kind), kind.fhir_type, True)
    for fhir_type in registry:
        codoc, standard = type_addresses(fhir_type)
        _routes(app, server, f"{BASE}/{fhir_type.codoc_path}", codoc, fhir_type.name, True)
        _routes(app, server, f"{BASE}/{fhir_type.name}", standard, fhir_type.name, False)
    everything = custom_doc("Versions of every resource, newest first (a history Bundle)", "Bundle")
    _add(app, f"{BASE}/_history", _type_endpoint(server, None), "GET", "History", True, everything)
