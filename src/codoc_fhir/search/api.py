"""Search routes: type searches on the Codoc and standard paths, Codoc sub-paths, POST
`_search` (form-encoded), and Patient compartments (`/Patient/1/Procedure`).

A patient-scoped caller (`request.state.patient_restriction`, set by the security layer)
only ever sees that patient's rows, in matches, includes and compartments alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from codoc_fhir.fhir.errors import UnsupportedMediaType
from codoc_fhir.fhir.references import key_number
from codoc_fhir.fhir.responses import fhir_response
from codoc_fhir.resources.base import Resource
from codoc_fhir.search.bundle import searchset
from codoc_fhir.search.clauses import patient_column
from codoc_fhir.search.execute import SearchScope, run_search
from codoc_fhir.search.includes import check_include
from codoc_fhir.search.model import is_lenient, parse_search

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
) -> dict[str, Any]:
    """Parse, run and answer a search in a read connection (call it in the threadpool)."""
    return server.run_read(
        lambda conn: search_in(
            conn,
            server.registry,
            kinds,
            pairs,
            self_url=self_url,
            server_base=server_base,
            lenient=lenient,
            patient=patient,
            compartment=compartment,
        )
    )


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
) -> dict[str, Any]:
    """The searchset Bundle of a search run in `conn` (a Bundle entry's GET, for one)."""
    request = parse_search(
        pairs,
        kinds,
        lenient=lenient,
        known_types=registry.types.keys(),
        include_ok=lambda spec: check_include(registry, spec),
        kinds_of=lambda name: registry.types[name].kinds,
    )
    all_kinds = registry.types[kinds[0].fhir_type].kinds
    scope = SearchScope(kinds, all_kinds, patient=patient, compartment=compartment)
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
        from codoc_fhir.api.routes import check_format

        check_format(request)
        pairs = await _pairs(request, form)
        origin = f"{request.url.scheme}://{request.url.netloc}"
        path = request.url.path.removesuffix("/_search")
        bundle = await run_in_threadpool(
            search_bundle,
            server,
            kinds,
            pairs,
            self_url=origin + path,
            server_base=origin + path[: path.index("/", 1)],
            lenient=is_lenient(request.headers.get("prefer")),
            patient=getattr(request.state, "patient_restriction", None),
            compartment=_compartment_id(patient_id) if patient_id is not None else None,
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
    from codoc_fhir.api.routes import _add

    show = path.split("/")[2].islower()
    _add(app, path, _endpoint(server, kinds, form=False, compartment=False), "GET", tag, show)
    search_post = _endpoint(server, kinds, form=True, compartment=False)
    _add(app, path + "/_search", search_post, "POST", tag, False)


def install_search_routes(app: FastAPI, server: Any) -> None:
    """Every search route; call before the instance routes (`/encounter/{ident}`)."""
    from codoc_fhir.api.routes import BASE, _add

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
        for path, show in (
            (f"{BASE}/Patient/{{patient_id}}/{fhir_type.name}", False),
            (f"{BASE}/patient/{{patient_id}}/{fhir_type.codoc_path}", True),
        ):
            _add(app, path, endpoint, "GET", fhir_type.name, show)
