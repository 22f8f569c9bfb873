"""Search routes: type searches on the Codoc and standard paths, Codoc sub-paths, POST
`_search` (form-encoded), and Patient compartments (`/Patient/1/Procedure`).

The search itself, and who may see what it finds, is the interaction layer's
(interactions/search.py); here the request is parsed and the Bundle sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from codoc_fhir.api.origin import public_origin
from codoc_fhir.api.routes import BASE, _add, check_format
from codoc_fhir.api.visibility import caller_of
from codoc_fhir.fhir.errors import UnsupportedMediaType
from codoc_fhir.fhir.references import key_number
from codoc_fhir.fhir.responses import fhir_response
from codoc_fhir.interactions.search import search as run_search
from codoc_fhir.resources.base import Resource
from codoc_fhir.resources.registry import Address
from codoc_fhir.search.clauses import patient_column
from codoc_fhir.search.model import is_lenient

FORM = "application/x-www-form-urlencoded"


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
    address = Address(server.registry.types[kinds[0].fhir_type], tuple(kinds))

    async def answer(request: Request, patient_id: str | None) -> Response:
        check_format(request)
        pairs = await _pairs(request, form)
        origin = public_origin(request)
        path = request.url.path.removesuffix("/_search")
        bundle = await run_in_threadpool(
            run_search,
            server,
            caller_of(request),
            address,
            pairs,
            self_url=origin + path,
            lenient=is_lenient(request.headers.get("prefer")),
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
