"""Search routes: type searches on the Codoc and standard paths, Codoc sub-paths, POST
`_search` (form-encoded), and Patient compartments (`/Patient/1/Procedure`).

A patient-scoped caller (`request.state.patient_restriction`, set by the security layer)
only ever sees that patient's rows in matches and compartments; included resources pass
the caller's Visibility of their own type (api/visibility.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from codoc_fhir.api.origin import public_origin
from codoc_fhir.api.routes import BASE, _add, base_url, check_format
from codoc_fhir.api.visibility import Visibility
from codoc_fhir.fhir.errors import UnsupportedMediaType
from codoc_fhir.fhir.references import key_number
from codoc_fhir.fhir.responses import fhir_response
from codoc_fhir.resources.base import Resource
from codoc_fhir.search.bundle import searchset
from codoc_fhir.search.clauses import patient_column
from codoc_fhir.search.execute import SearchScope, run_search
from codoc_fhir.search.includes import check_include
from codoc_fhir.search.model import SearchRequest, is_lenient, parse_search

FORM = "application/x-www-form-urlencoded"


def search_bundle(
    server: Any,
    kinds: Sequence[Resource],
    pairs: list[tuple[str, str]],
    *,
    self_url: str,
    server_base: str,
    lenient: bool = False,
    patient: int | None = None,
    compartment: int | None = None,
    visible: Callable[[Resource], Any | None] | None = None,
) -> dict[str, Any]:
    """Parse, run and answer a search (call it in the threadpool).

    The query is parsed before a connection is opened: a search refused for its cost (or
    any other 400) never reaches the database.
    """
    request = parse_for(server.registry, kinds, pairs, lenient)
    scope = search_scope(server.registry, kinds, patient, compartment, visible)
    return server.run_read(
        lambda conn: searchset(
            request,
            run_search(conn, scope, request, server.registry),
            self_url,
            server_base,
        )
    )


def parse_for(
    registry: Any, kinds: Sequence[Resource], pairs: list[tuple[str, str]], lenient: bool
) -> SearchRequest:
    """The parsed search, held to the registry's cost limits (CODOC_MAX_SEARCH_VALUES)."""
    return parse_search(
        pairs,
        kinds,
        lenient=lenient,
        known_types=registry.types.keys(),
        include_ok=lambda spec: check_include(registry, spec),
        max_values=registry.max_search_values,
        kinds_of=lambda name: registry.types[name].kinds,
    )


def search_scope(
    registry: Any,
    kinds: Sequence[Resource],
    patient: int | None,
    compartment: int | None,
    visible: Callable[[Resource], Any | None] | None = None,
) -> SearchScope:
    all_kinds = registry.types[kinds[0].fhir_type].kinds
    return SearchScope(kinds, all_kinds, patient, compartment, visible)


def search_in(
    conn: Connection,
    registry: Any,
    kinds: Sequence[Resource],
    pairs: list[tuple[str, str]],
    *,
    self_url: str,
    server_base: str,
    lenient: bool = False,
    patient: int | None = None,
    compartment: int | None = None,
    visible: Callable[[Resource], Any | None] | None = None,
) -> dict[str, Any]:
    """The searchset Bundle of a search run in `conn` (a Bundle entry's GET, for one);
    `visible` says which rows of each kind may be included (see SearchScope)."""
    request = parse_for(registry, kinds, pairs, lenient)
    scope = search_scope(registry, kinds, patient, compartment, visible)
    return searchset(request, run_search(conn, scope, request, registry), self_url, server_base)


async def _pairs(request: Request, form: bool) -> list[tuple[str, str]]:
    pairs = list(request.query_params.multi_items())
    if form:
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        body = await request.body()
        if body and media != FORM:
            raise UnsupportedMediaType(f"POST _search takes {FORM}, not {media or '(none)'}")
        pairs += parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    return pairs


def _compartment_id(text: str) -> int:
    num = key_number(text)
    return -1 if num is None else num


def _endpoint(server: Any, kinds: Sequence[Resource], *, form: bool, compartment: bool) -> Any:
    async def answer(request: Request, patient_id: str | None) -> Response:
        check_format(request)
        pairs = await _pairs(request, form)
        origin = public_origin(request)
        path = request.url.path.removesuffix("/_search")
        bundle = await run_in_threadpool(
            search_bundle,
            server,
            kinds,
            pairs,
            self_url=origin + path,
            server_base=base_url(request),
            lenient=is_lenient(request.headers.get("prefer")),
            patient=getattr(request.state, "patient_restriction", None),
            compartment=_compartment_id(patient_id) if patient_id is not None else None,
            visible=Visibility.of(request).rows,
        )
        return fhir_response(request, bundle)

    if compartment:

        async def in_compartment(request: Request, patient_id: str) -> Response:
            return await answer(request, patient_id)

        return in_compartment

    async def search(request: Request) -> Response:
        return await answer(request, None)

    return search


def _paths(app: FastAPI, server: Any, path: str, kinds: Sequence[Resource], tag: str) -> None:
    _add(app, path, _endpoint(server, kinds, form=False, compartment=False), "GET", tag)
    search_post = _endpoint(server, kinds, form=True, compartment=False)
    summary = f"Search {tag} resources, parameters in a form body (a searchset Bundle)"
    _add(app, path + "/_search", search_post, "POST", tag, summary=summary)


def install_search_routes(app: FastAPI, server: Any) -> None:
    """Every search route; call before the instance routes (`/encounter/{ident}`)."""
    registry = server.registry
    for kind in registry.sub_paths():
        _paths(app, server, f"{BASE}/{kind.codoc_path}", [kind], kind.fhir_type)
    for fhir_type in registry:
        for path in (f"{BASE}/{fhir_type.codoc_path}", f"{BASE}/{fhir_type.name}"):
            _paths(app, server, path, fhir_type.kinds, fhir_type.name)
    for fhir_type in registry:
        kinds = [kind for kind in fhir_type.kinds if patient_column(kind) is not None]
        if fhir_type.name == "Patient" or not kinds:
            continue
        endpoint = _endpoint(server, kinds, form=False, compartment=True)
        summary = f"Search the {fhir_type.name} resources of one patient (its compartment)"
        for path in (
            f"{BASE}/Patient/{{patient_id}}/{fhir_type.name}",
            f"{BASE}/patient/{{patient_id}}/{fhir_type.codoc_path}",
        ):
            _add(app, path, endpoint, "GET", fhir_type.name, summary=summary)
