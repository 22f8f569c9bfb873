"""`$validate` routes on every type and instance path; the operation itself (every check
a create or update would run, nothing kept) is interactions/operations.py's.
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
    read_body,
    sub_path_address,
    type_addresses,
)
from codoc_fhir.api.visibility import caller_of
from codoc_fhir.fhir.responses import fhir_response
from codoc_fhir.interactions.operations import OperationCall, operation
from codoc_fhir.resources.registry import Address


def _endpoint(server: Server, path: Address) -> Any:
    """POST on the type path (`ident` None) or an instance path."""

    async def validate(request: Request, ident: str | None = None) -> Response:
        body, _ = await read_body(request)
        address = path if ident is None else replace(path, key=ident)
        call = OperationCall("$validate", address, body)
        outcome, status = await run_in_threadpool(operation, server, caller_of(request), call)
        return fhir_response(request, outcome, status)

    return validate


def _type_endpoint(server: Server, path: Address) -> Any:
    endpoint = _endpoint(server, path)

    async def validate(request: Request) -> Response:
        return await endpoint(request)

    return validate


def _instance_endpoint(server: Server, path: Address) -> Any:
    endpoint = _endpoint(server, path)

    async def validate(request: Request, ident: str) -> Response:
        return await endpoint(request, ident)

    return validate


def _routes(app: FastAPI, server: Server, path: str, target: Address, tag: str, show: bool) -> None:
    doc = custom_doc(f"Check {tag} as a create would, storing nothing", "OperationOutcome", tag)
    validate = _type_endpoint(server, target)
    _add(app, f"{path}/$validate", validate, "POST", tag, show, openapi_extra=doc)
    doc = custom_doc(f"Check an update of this {tag}, storing nothing", "OperationOutcome", tag)
    instance = _instance_endpoint(server, target)
    _add(app, path + "/{ident}/$validate", instance, "POST", tag, show, openapi_extra=doc)


def install_validate_routes(app: FastAPI, server: Server) -> None:
    """`$validate` on every type and instance path (Codoc sub-paths first)."""
    for kind in server.registry.sub_paths():
        path = f"{BASE}/{kind.codoc_path}"
        _routes(app, server, path, sub_path_address(server.registry, kind), kind.fhir_type, True)
    for fhir_type in server.registry:
        codoc, standard = type_addresses(fhir_type)
        _routes(app, server, f"{BASE}/{fhir_type.codoc_path}", codoc, fhir_type.name, True)
        _routes(app, server, f"{BASE}/{fhir_type.name}", standard, fhir_type.name, False)
