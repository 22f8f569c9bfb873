"""`$validate`: every check a create or update would run, references included, nothing kept.

`POST /Type/$validate` checks a body as a create would; `POST /Type/{id}/$validate` as an
update of that resource would (`mode=delete` in a Parameters body: whether it could be
deleted). The write really runs, in a transaction that is always rolled back, so the
checks are exactly those of the write, database constraints included. Valid: 200 and an
OperationOutcome of severity `information`; invalid: 400 and the write's OperationOutcome.
The addressed resource itself missing stays a 404 (410 once deleted); a token that may not
write answers 401/403 as for the write.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from codoc_fhir.api.auth import check_patient
from codoc_fhir.api.docs import custom_doc
from codoc_fhir.api.routes import (
    BASE,
    KindResolver,
    Server,
    _add,
    read_body,
    standard_resolver,
    sub_path_resolver,
)
from codoc_fhir.fhir.errors import FhirError, Invalid, operation_outcome
from codoc_fhir.fhir.responses import fhir_response
from codoc_fhir.resources.base import Resource
from codoc_fhir.warehouse.db import write_transaction

MODES = ("create", "update", "delete")


class _RolledBack(Exception):
    """Raised at the end of a successful check so that the transaction never commits."""


def unwrap(body: Any) -> tuple[Any, str | None]:
    """(resource, mode) from a bare resource or a Parameters (`resource`, `mode`)."""
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        return body, None
    resource, mode = None, None
    for parameter in body.get("parameter") or []:
        if not isinstance(parameter, dict):
            continue
        if parameter.get("name") == "resource":
            resource = parameter.get("resource")
        elif parameter.get("name") == "mode":
            mode = parameter.get("valueCode") or parameter.get("valueString")
    if mode is not None and mode not in MODES:
        raise Invalid(f"$validate mode must be one of {', '.join(MODES)}", expression=["mode"])
    return resource, mode


def dry_run(server: Server, work: Callable[[Connection], Any]) -> None:
    """Run `work` in a transaction and roll it back whatever happens."""
    try:
        with write_transaction(server.engine) as conn:
            work(conn)
            raise _RolledBack
    except _RolledBack:
        return


def dry_run_in(conn: Connection, work: Callable[[Connection], Any]) -> None:
    """Run `work` inside a savepoint of `conn` (a transaction Bundle's), rolled back."""
    savepoint = conn.begin_nested()
    try:
        work(conn)
    finally:
        savepoint.rollback()


def verdict(error: FhirError | None) -> tuple[dict[str, Any], int]:
    """The OperationOutcome and status $validate answers for a check's outcome."""
    if error is None:
        text = "The resource is valid: the write would be accepted"
        return operation_outcome("informational", text, severity="information"), 200
    if error.status in (401, 403, 404, 410):
        raise error
    return error.outcome(), 400


def create_check(
    request: Request, pick_kind: Callable[[Any], Resource], body: Any
) -> Callable[[Connection], None]:
    """The work of `$validate` on a type: the create, as the route would run it."""
    resource, _mode = unwrap(body)

    def work(conn: Connection) -> None:
        kind = pick_kind(resource)
        created = kind.create(conn, resource)
        num = kind.parse_fhir_id(str(created["id"]))
        if num is not None:
            check_patient(request, conn, kind, num, write=True, created=True)

    return work


def instance_check(
    request: Request, resolve: Callable[[Connection], tuple[Resource, int]], body: Any
) -> Callable[[Connection], None]:
    """The work of `$validate` on an instance: its update (or, `mode=delete`, delete)."""
    resource, mode = unwrap(body)

    def work(conn: Connection) -> None:
        kind, num = resolve(conn)
        kind.fetch_row(conn, num)  # 404 / 410 for the addressed resource itself
        check_patient(request, conn, kind, num, write=True)
        if mode == "delete":
            kind.delete(conn, num)
            return
        kind.update(conn, num, resource)
        check_patient(request, conn, kind, num, write=True, created=True)

    return work


def _type_endpoint(server: Server, pick_kind: Callable[[Any], Resource]) -> Any:
    async def validate(request: Request) -> Response:
        body, _ = await read_body(request)
        return await _answer(request, server, create_check(request, pick_kind, body))

    return validate


def _instance_endpoint(server: Server, resolve: KindResolver) -> Any:
    async def validate(request: Request, ident: str) -> Response:
        body, _ = await read_body(request)
        work = instance_check(request, lambda conn: resolve(conn, ident), body)
        return await _answer(request, server, work)

    return validate


async def _answer(request: Request, server: Server, work: Callable[[Connection], Any]) -> Response:
    error: FhirError | None = None
    try:
        await run_in_threadpool(dry_run, server, work)
    except FhirError as failure:
        error = failure
    outcome, status = verdict(error)
    return fhir_response(request, outcome, status)


def _routes(
    app: FastAPI,
    server: Server,
    path: str,
    pick_kind: Callable[[Any], Resource],
    resolve: KindResolver,
    tag: str,
    show: bool,
) -> None:
    doc = custom_doc(f"Check {tag} as a create would, storing nothing", "OperationOutcome", tag)
    validate = _type_endpoint(server, pick_kind)
    _add(app, f"{path}/$validate", validate, "POST", tag, show, openapi_extra=doc)
    doc = custom_doc(f"Check an update of this {tag}, storing nothing", "OperationOutcome", tag)
    instance = _instance_endpoint(server, resolve)
    _add(app, path + "/{ident}/$validate", instance, "POST", tag, show, openapi_extra=doc)


def install_validate_routes(app: FastAPI, server: Server) -> None:
    """`$validate` on every type and instance path (Codoc sub-paths first)."""
    for kind in server.registry.sub_paths():
        path = f"{BASE}/{kind.codoc_path}"
        pick = lambda body, kind=kind: kind  # noqa: E731
        _routes(app, server, path, pick, sub_path_resolver(kind), kind.fhir_type, True)
    for fhir_type in server.registry:
        pick_kind = fhir_type.kind_for_create
        codoc = f"{BASE}/{fhir_type.codoc_path}"
        _routes(app, server, codoc, pick_kind, fhir_type.resolve_codoc_key, fhir_type.name, True)
        standard = f"{BASE}/{fhir_type.name}"
        resolve = standard_resolver(fhir_type)
        _routes(app, server, standard, pick_kind, resolve, fhir_type.name, False)
