"""The REST routes, generated from the registry.

Every FHIR type answers on its Codoc path (`/v4.3.0/procedure/12/`) and its standard path
(`/v4.3.0/Procedure/12`), trailing slash optional; kinds with a Codoc sub-path
(`/v4.3.0/encounter/movement/3/`) answer there with the bare number.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from email.utils import format_datetime as http_date
from functools import partial
from typing import Any

from fastapi import Depends, FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from codoc_fhir import FHIR_VERSION
from codoc_fhir.api.auth import authorize
from codoc_fhir.api.docs import operation_doc, success_status
from codoc_fhir.api.origin import public_base
from codoc_fhir.api.plain_routes import add_plain_route, plain_routes_of
from codoc_fhir.api.visibility import caller_of
from codoc_fhir.config import Settings
from codoc_fhir.fhir.errors import (
    Invalid,
    NotImplementedYet,
    UnsupportedMediaType,
    operation_outcome,
)
from codoc_fhir.fhir.responses import check_acceptable, fhir_response
from codoc_fhir.fhir.validation import parse_json_body
from codoc_fhir.interactions import crud
from codoc_fhir.interactions.conditional import condition_pairs
from codoc_fhir.interactions.database import Engined
from codoc_fhir.resources.base import Resource
from codoc_fhir.resources.registry import Address, FhirType, Registry
from codoc_fhir.search.bundle import shape
from codoc_fhir.search.model import SUMMARY_MODES

BASE = f"/v{FHIR_VERSION}"
JSON_TYPES = ("application/json", "application/fhir+json")
JSON_PATCH = "application/json-patch+json"
READ_OPERATIONS = ("$lookup", "$validate-code", "$expand")

Endpoint = Callable[..., Awaitable[Response]]


@dataclass
class Server(Engined):
    """What every handler needs: the database (each interaction in a transaction of its
    own, interactions/database.py), the registry and the settings."""

    settings: Settings


# --- request helpers -----------------------------------------------------------------------


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def check_format(request: Request) -> None:
    """`_format` and Accept may only ask for JSON (406; the middleware says it first)."""
    check_acceptable(request.headers.get("accept", ""), request.query_params.get("_format"))


async def read_body(request: Request, *, allow_json_patch: bool = False) -> tuple[Any, bool]:
    """The decoded JSON body, and whether it is a JSON Patch. 415 for other media types."""
    check_format(request)
    media = _media_type(request)
    is_patch = allow_json_patch and media == JSON_PATCH
    if media not in JSON_TYPES and not is_patch:
        raise UnsupportedMediaType(
            f"Content-Type {media or '(none)'!r} is not supported: "
            "send application/fhir+json or application/json"
        )
    return parse_json_body(await request.body()), is_patch


base_url = public_base  # the FHIR base of every link (api/origin.py)


def resource_headers(resource: dict[str, Any]) -> dict[str, str]:
    meta = resource.get("meta") or {}
    headers = {"ETag": f'W/"{meta.get("versionId", "1")}"'}
    if meta.get("lastUpdated"):
        when = datetime.fromisoformat(meta["lastUpdated"].replace("Z", "+00:00"))
        headers["Last-Modified"] = http_date(when, usegmt=True)
    return headers


def answer_resource(request: Request, resource: dict[str, Any], status: int = 200) -> Response:
    headers = resource_headers(resource)
    if status == 201:
        headers["Location"] = f"{base_url(request)}/{resource['resourceType']}/{resource['id']}"
    if request.method in ("POST", "PUT", "PATCH"):
        prefer = request.headers.get("prefer", "")
        if "return=minimal" in prefer:
            return Response(status_code=status, headers=headers)
        if "return=operationoutcome" in prefer.lower():
            done = "created" if status == 201 else "stored"
            where = f"{resource['resourceType']}/{resource['id']}"
            text = f"{where} {done}, version {meta_version(resource)}"
            outcome = operation_outcome("informational", text, severity="information")
            return fhir_response(request, outcome, status, headers)
    return fhir_response(request, resource, status, headers)


def meta_version(resource: dict[str, Any]) -> str:
    return str((resource.get("meta") or {}).get("versionId", "1"))


# --- handlers ------------------------------------------------------------------------------


def address_of(path: Address) -> Callable[[str], Address]:
    """The Address of an instance of a route's path (`path` names the kinds, `ident` the
    row: read by the path's own rule, Codoc key, bare number or FHIR id)."""

    def address(ident: str) -> Address:
        return replace(path, key=ident)

    return address


def _create(server: Server, path: Address) -> Endpoint:
    """Create; conditional (If-None-Exist header or query string) on the kinds of the path."""

    async def create(request: Request) -> Response:
        body, _ = await read_body(request)
        if_none_exist = request.headers.get("if-none-exist") or request.url.query or None
        resource, status = await run_in_threadpool(
            crud.create, server, caller_of(request), path, body, if_none_exist=if_none_exist
        )
        return answer_resource(request, resource, status)

    return create


def read_shape(request: Request) -> tuple[list[str] | None, str]:
    """The `_elements` and `_summary` of a read (400 for a summary a read cannot have)."""
    summary = request.query_params.get("_summary", "false")
    if summary not in SUMMARY_MODES:
        raise Invalid(
            f"_summary={summary} is not supported on a read (true, text, data, false)",
            expression=["_summary"],
        )
    wanted = request.query_params.get("_elements")
    elements = [item.strip() for item in (wanted or "").split(",") if item.strip()]
    return elements or None, summary


def _read(server: Server, path: Address) -> Endpoint:
    address = address_of(path)

    async def read(request: Request, ident: str) -> Response:
        check_format(request)
        elements, summary = read_shape(request)
        caller = caller_of(request)
        resource = await run_in_threadpool(crud.read, server, caller, address(ident))
        return answer_resource(request, shape(resource, elements, summary))

    return read


def _update(server: Server, path: Address) -> Endpoint:
    address = address_of(path)

    async def update(request: Request, ident: str) -> Response:
        body, _ = await read_body(request)
        if_match = request.headers.get("if-match")
        caller = caller_of(request)
        resource, _status = await run_in_threadpool(
            partial(crud.update, if_match=if_match), server, caller, address(ident), body
        )
        return answer_resource(request, resource)

    return update


def _patch(server: Server, path: Address) -> Endpoint:
    address = address_of(path)

    async def patch(request: Request, ident: str) -> Response:
        body, is_json_patch = await read_body(request, allow_json_patch=True)
        work = partial(
            crud.patch, if_match=request.headers.get("if-match"), json_patch=is_json_patch
        )
        caller = caller_of(request)
        return answer_resource(
            request, await run_in_threadpool(work, server, caller, address(ident), body)
        )

    return patch


def _delete(server: Server, path: Address) -> Endpoint:
    address = address_of(path)

    async def delete(request: Request, ident: str) -> Response:
        work = partial(crud.delete, if_match=request.headers.get("if-match"))
        await run_in_threadpool(work, server, caller_of(request), address(ident))
        return Response(status_code=204)

    return delete


def _conditional_routes(
    app: FastAPI, server: Server, path: str, target: Address, tag: str, show: bool
) -> None:
    """`PUT|PATCH|DELETE <type path>?<search>`: on the one resource the search names."""

    def given(request: Request) -> dict[str, Any]:
        return {
            "if_match": request.headers.get("if-match"),
            "condition": condition_pairs(request.url.query or None),
        }

    async def update(request: Request) -> Response:
        body, _ = await read_body(request)
        work = partial(crud.update, **given(request))
        resource, status = await run_in_threadpool(work, server, caller_of(request), target, body)
        return answer_resource(request, resource, status)

    async def patch(request: Request) -> Response:
        body, is_json_patch = await read_body(request, allow_json_patch=True)
        work = partial(crud.patch, json_patch=is_json_patch, **given(request))
        return answer_resource(
            request, await run_in_threadpool(work, server, caller_of(request), target, body)
        )

    async def delete(request: Request) -> Response:
        work = partial(crud.delete, **given(request))
        await run_in_threadpool(work, server, caller_of(request), target)
        return Response(status_code=204)

    _add(app, path, update, "PUT", tag, show)
    _add(app, path, patch, "PATCH", tag, show)
    _add(app, path, delete, "DELETE", tag, show)


def _not_yet(message: str) -> Endpoint:
    async def not_yet(request: Request) -> Response:
        raise NotImplementedYet(message)

    return not_yet


# --- route table ---------------------------------------------------------------------------


def interaction_of(path: str, method: str) -> str:
    """The FHIR interaction a route serves, from its method and path."""
    if any(path.endswith(name) for name in READ_OPERATIONS):
        return "search"  # terminology operations read, whatever the method
    if method == "GET" and "/_history" in path:
        return "vread" if path.endswith("{vid}") else "history"
    if method == "GET":
        return "read" if path.endswith("}") else "search"
    if method == "POST":
        return "search" if path.endswith("_search") else "create"
    return {"PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(method, "read")


def access_check(fhir_type: str, interaction: str) -> Any:
    """A dependency enforcing the token's scopes for `interaction` on `fhir_type`."""

    async def check_access(request: Request) -> None:
        authorize(request, fhir_type, interaction)

    return Depends(check_access)


def listed_variant(path: str) -> str:
    """The spelling of a route /docs lists: Codoc paths with their trailing slash
    (`/procedure/{ident}/`), standard FHIR ones without (`/Procedure/{ident}`, `/metadata`,
    `/$export`)."""
    segment = path.removeprefix(f"{BASE}/").split("/", 1)[0]
    standard = segment[:1].isupper() or segment.startswith("$") or segment == "metadata"
    return path if standard else path + "/"


def _add(
    app: FastAPI,
    path: str,
    endpoint: Endpoint,
    method: str,
    tag: str,
    show: bool = True,
    openapi_extra: dict[str, Any] | None = None,
    summary: str | None = None,
) -> None:
    """Both spellings of a route (with and without the trailing slash), scope-checked.

    Routes tagged with something else than a FHIR type (except Capabilities) need a
    wildcard (`*`) scope; `openapi_extra` defaults to the resource's documented bodies,
    `summary` to the interaction's. With `show`, /docs lists one spelling (listed_variant).
    """
    public = tag == "Capabilities"
    interaction = interaction_of(path, method)
    plain = plain_routes_of(app)
    if plain is not None and tag in plain.tags:  # a stored type (api/plain_routes.py)
        add_plain_route(app, plain, path, endpoint, method, tag, interaction)
        return
    if openapi_extra is None:
        openapi_extra = {"summary": summary} if public else operation_doc(tag, interaction, summary)
    listed = listed_variant(path)
    for variant in (path, path + "/"):
        app.add_api_route(
            variant,
            endpoint,
            methods=[method],
            tags=[tag],
            include_in_schema=show and variant == listed,
            name=f"{method.lower()} {variant}",
            dependencies=[] if public else [access_check(tag, interaction)],
            openapi_extra=openapi_extra,
            status_code=success_status(interaction) if not public else None,
        )


def _instance_routes(
    app: FastAPI, server: Server, path: str, target: Address, tag: str, show: bool
) -> None:
    item = path + "/{ident}"
    _add(app, item, _read(server, target), "GET", tag, show)
    _add(app, item, _update(server, target), "PUT", tag, show)
    _add(app, item, _patch(server, target), "PATCH", tag, show)
    _add(app, item, _delete(server, target), "DELETE", tag, show)


def sub_path_address(registry: Registry, kind: Resource) -> Address:
    """What a kind's own Codoc path (`/encounter/movement/3/`) names: bare numbers."""
    return Address(registry.types[kind.fhir_type], (kind,), None, codoc=True, sub_path=True)


def type_addresses(fhir_type: FhirType) -> tuple[Address, Address]:
    """What a type's Codoc path (Codoc keys) and its standard path (FHIR ids) name."""
    kinds = tuple(fhir_type.kinds)
    return Address(fhir_type, kinds, None, codoc=True), Address(fhir_type, kinds, None)


def _sub_path_routes(app: FastAPI, server: Server, kind: Resource) -> None:
    """`/encounter/movement/3/`: the kind's own path, taking the bare number."""
    path = f"{BASE}/{kind.codoc_path}"
    target = sub_path_address(server.registry, kind)
    _add(app, path, _create(server, target), "POST", kind.fhir_type, True)
    _conditional_routes(app, server, path, target, kind.fhir_type, True)
    _instance_routes(app, server, path, target, kind.fhir_type, True)


def _type_routes(app: FastAPI, server: Server, fhir_type: FhirType) -> None:
    standard = f"{BASE}/{fhir_type.name}"
    codoc = f"{BASE}/{fhir_type.codoc_path}"
    codoc_target, standard_target = type_addresses(fhir_type)
    for path, target in ((codoc, codoc_target), (standard, standard_target)):
        _add(app, path, _create(server, target), "POST", fhir_type.name)
        _conditional_routes(app, server, path, target, fhir_type.name, True)
        _instance_routes(app, server, path, target, fhir_type.name, True)
