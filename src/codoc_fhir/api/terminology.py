"""Routes of the terminology operations (resources/terminology.py does the SQL).

`GET|POST /CodeSystem/$lookup`, `GET|POST /CodeSystem/$validate-code` (also on the Codoc
path `/codesystem/`) and `GET|POST /ValueSet/$expand`. Parameters come from the query
string or, on POST, from a Parameters body. They read: a token needs a read or search
scope on CodeSystem (ValueSet for $expand).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from codoc_fhir.api.docs import custom_doc
from codoc_fhir.api.routes import BASE, Server, _add, check_format, read_body
from codoc_fhir.fhir.dates import format_instant, utc_now
from codoc_fhir.fhir.errors import Invalid
from codoc_fhir.fhir.responses import fhir_response
from codoc_fhir.resources import terminology

Operation = Callable[[Connection, dict[str, str]], dict[str, Any]]


async def _parameters(request: Request) -> dict[str, str]:
    """Query parameters, then those of a POSTed Parameters resource (value[x] as text)."""
    check_format(request)
    values = dict(request.query_params)
    if request.method != "POST":
        return values
    body, _ = await read_body(request)
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise Invalid("POST a Parameters resource (or use GET with query parameters)")
    values.update(_parameter_values(body))
    return values


def _parameter_values(body: dict[str, Any]) -> dict[str, str]:
    """name -> value[x] (as text) of each parameter of a Parameters resource."""
    values: dict[str, str] = {}
    for parameter in body.get("parameter") or []:
        if not isinstance(parameter, dict) or not isinstance(parameter.get("name"), str):
            continue
        for key, value in parameter.items():
            plain = isinstance(value, str | int) and not isinstance(value, bool)
            if key.startswith("value") and plain:
                values[parameter["name"]] = str(value)
    return values


def parameters_of(query: str, body: Any) -> dict[str, str]:
    """The parameters of a Bundle entry: its url's query, then a Parameters resource."""
    values = dict(parse_qsl(query, keep_blank_values=True))
    if isinstance(body, dict) and body.get("resourceType") == "Parameters":
        values.update(_parameter_values(body))
    return values


def operation_named(type_name: str, name: str) -> Operation | None:
    """The terminology operation `Type/$name` names (None: not one of them)."""
    if type_name.lower() == "codesystem":
        return {"$lookup": _lookup, "$validate-code": _validate_code}.get(name)
    return _expand if type_name == "ValueSet" and name == "$expand" else None


def _endpoint(server: Server, operation: Operation) -> Any:
    async def run(request: Request) -> Response:
        values = await _parameters(request)
        answer = await run_in_threadpool(server.run_read, lambda conn: operation(conn, values))
        return fhir_response(request, answer)

    return run


def _lookup(conn: Connection, values: dict[str, str]) -> dict[str, Any]:
    return terminology.lookup(conn, values.get("system"), values.get("code"))


def _validate_code(conn: Connection, values: dict[str, str]) -> dict[str, Any]:
    url = values.get("url") or values.get("system")
    return terminology.validate_code(conn, url, values.get("code"), values.get("display"))


def _expand(conn: Connection, values: dict[str, str]) -> dict[str, Any]:
    return terminology.expand(
        conn,
        values.get("url"),
        values.get("filter"),
        values.get("count"),
        values.get("offset"),
        format_instant(utc_now()) or "",
    )


def install_terminology_routes(app: FastAPI, server: Server) -> None:
    """Before the CodeSystem instance routes, so that `$lookup` is no CodeSystem id."""
    for method in ("GET", "POST"):
        body = "Parameters" if method == "POST" else None
        lookup = custom_doc("Look a code up in a thesaurus ($lookup)", "Parameters", body)
        check = custom_doc("Tell whether a code is in a thesaurus", "Parameters", body)
        for path, show in ((f"{BASE}/codesystem", True), (f"{BASE}/CodeSystem", False)):
            endpoint = _endpoint(server, _lookup)
            _add(app, f"{path}/$lookup", endpoint, method, "CodeSystem", show, lookup)
            endpoint = _endpoint(server, _validate_code)
            _add(app, f"{path}/$validate-code", endpoint, method, "CodeSystem", show, check)
        doc = custom_doc("Expand the all-codes ValueSet of a thesaurus", "ValueSet", body)
        expand = _endpoint(server, _expand)
        _add(app, f"{BASE}/ValueSet/$expand", expand, method, "ValueSet", True, doc)
