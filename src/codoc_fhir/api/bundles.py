"""Batch and transaction Bundles posted to the base URL (`POST /v4.3.0/`).

A `transaction` runs in one database transaction: every entry succeeds or nothing is
stored, and the answer is the first failure's OperationOutcome with its status. Its
entries run in the FHIR processing order (DELETE, POST, PUT/PATCH, GET); POSTs are further
ordered so that an entry runs after the entries whose `urn:uuid:` fullUrl it references,
and every reference to such a fullUrl is rewritten to the id assigned before the resource
is validated. A `batch` runs each entry in its own transaction, in the order sent, and
reports each outcome in its response entry.

Entries are routed like requests (`Patient`, `patient/1`, `encounter/movement/3`,
`Procedure?subject=Patient/1`) through `Registry.address`, run the generic interactions
of the kinds, and are authorized one by one (scopes and patient-scoped tokens).
"""

from __future__ import annotations

import base64
import copy
import http
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import orjson
from fastapi import FastAPI
from sqlalchemy import Connection
from sqlalchemy.exc import DataError, IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from codoc_fhir.api.auth import authorize, check_patient
from codoc_fhir.api.bundle_entries import (
    Entry,
    parse_bundle,
    rewrite,
    rewrite_text,
    transaction_order,
)
from codoc_fhir.api.conditional import (
    condition_pairs,
    conditional_delete,
    conditional_patch,
    conditional_update,
    create_unless_exists,
)
from codoc_fhir.api.history import run_history_entry
from codoc_fhir.api.routes import (
    BASE,
    JSON_PATCH,
    Server,
    base_url,
    read_body,
    resource_headers,
)
from codoc_fhir.api.search_routes import search_in
from codoc_fhir.api.terminology import operation_named, parameters_of
from codoc_fhir.api.validate import create_check, dry_run_in, instance_check, verdict
from codoc_fhir.api.visibility import Visibility, withheld
from codoc_fhir.fhir.errors import Conflict, FhirError, Invalid, element_path
from codoc_fhir.fhir.responses import fhir_response
from codoc_fhir.resources.registry import Address
from codoc_fhir.search.matches import resolve_conditional_references


class NotSupported(FhirError):
    status, code = 400, "not-supported"


@dataclass
class Outcome:
    """What an entry did: HTTP status, the resource (or searchset) and where it lives."""

    status: int
    resource: dict[str, Any] | None = None
    location: str | None = None


@dataclass
class Context:
    """The request the Bundle came in (for scopes), the server, and the fullUrls assigned."""

    server: Server
    request: Request
    assigned: dict[str, str] = field(default_factory=dict)  # fullUrl -> "Type/id"

    def patient(self) -> int | None:
        return getattr(self.request.state, "patient_restriction", None)


# --- one entry -----------------------------------------------------------------------------


def run_entry(conn: Connection, context: Context, entry: Entry) -> Outcome:
    """Run one entry in `conn`, as the matching REST interaction would."""
    handler = HANDLERS.get(entry.method)
    if handler is None:
        raise NotSupported(f"Method {entry.method} is not supported in a Bundle entry")
    path, _, query = entry.url.partition("?")
    if "$" in path:
        return _operation(conn, context, entry, path, query)
    if entry.method in ("GET", "HEAD"):
        versions = run_history_entry(conn, context.server, context.request, path, query)
        if versions is not None:
            return Outcome(200, None if entry.method == "HEAD" else versions)
    address = context.server.registry.address(path)
    if entry.resource is not None:
        entry.resource = resolve_conditional_references(
            conn, context.server.registry.types, entry.resource, context.patient()
        )
    return handler(conn, context, entry, address, query)


def _post(conn: Connection, context: Context, entry: Entry, address: Address, query: str) -> Any:
    if address.key is not None or query:
        raise Invalid(
            "A POST entry's url is the type alone (Patient), conditions go in ifNoneExist"
        )
    authorize(context.request, address.fhir_type.name, "create")
    kind = address.kind_for_create(entry.resource)
    resource, status = create_unless_exists(
        conn,
        address.kinds,
        kind,
        entry.resource,
        condition_pairs(entry.if_none_exist),
        known_types=list(context.server.registry.types),
        patient=context.patient(),
    )
    num = kind.parse_fhir_id(str(resource["id"]))
    if status == 201 and num is not None:
        check_patient(context.request, conn, kind, num, write=True, created=True)
    return Outcome(status, resource, _location(resource))


def _put(conn: Connection, context: Context, entry: Entry, address: Address, query: str) -> Any:
    authorize(context.request, address.fhir_type.name, "update")
    if address.key is None:
        resource, status = conditional_update(
            conn,
            context.request,
            address.kinds,
            address.kind_for_create,
            entry.resource,
            _condition(query),
            known_types=list(context.server.registry.types),
            if_match=entry.if_match,
        )
        return Outcome(status, resource, _location(resource))
    kind, num = address.resolve(conn)
    check_patient(context.request, conn, kind, num, write=True)
    resource = kind.update(conn, num, entry.resource, entry.if_match)
    check_patient(context.request, conn, kind, num, write=True, created=True)
    return Outcome(200, resource, _location(resource))


def _patch(conn: Connection, context: Context, entry: Entry, address: Address, query: str) -> Any:
    authorize(context.request, address.fhir_type.name, "patch")
    changes, json_patch = _patch_body(entry.resource, address.fhir_type.name)
    if address.key is None:
        resource = conditional_patch(
            conn,
            context.request,
            address.kinds,
            changes,
            _condition(query),
            known_types=list(context.server.registry.types),
            if_match=entry.if_match,
            json_patch=json_patch,
        )
        return Outcome(200, resource, _location(resource))
    kind, num = address.resolve(conn)
    check_patient(context.request, conn, kind, num, write=True)
    resource = kind.patch(conn, num, changes, entry.if_match, json_patch=json_patch)
    check_patient(context.request, conn, kind, num, write=True, created=True)
    return Outcome(200, resource, _location(resource))


def _condition(query: str) -> list[tuple[str, str]]:
    """The search of a conditional entry (`Patient?identifier=...`); 400 without one."""
    if not query:
        raise Invalid("A conditional entry needs a search after the type: Type?<search>")
    return condition_pairs(query)


def _patch_body(resource: Any, fhir_type: str) -> tuple[Any, bool]:
    """A Binary holding a JSON Patch, or the fields to merge as a partial resource."""
    kind = resource.get("resourceType") if isinstance(resource, dict) else None
    if kind == "Binary" and resource.get("contentType") == JSON_PATCH:
        try:
            return orjson.loads(base64.b64decode(resource.get("data") or "")), True
        except (ValueError, orjson.JSONDecodeError):
            raise Invalid("The Binary's data is not a base64 JSON Patch") from None
    if kind == fhir_type:
        return resource, False
    raise NotSupported(
        "A PATCH entry takes a Binary (application/json-patch+json) or the fields to merge"
    )


def _delete(conn: Connection, context: Context, entry: Entry, address: Address, query: str) -> Any:
    authorize(context.request, address.fhir_type.name, "delete")
    if address.key is None:
        conditional_delete(
            conn,
            context.request,
            address.kinds,
            _condition(query),
            known_types=list(context.server.registry.types),
            if_match=entry.if_match,
        )
        return Outcome(204)
    kind, num = address.resolve(conn)
    check_patient(context.request, conn, kind, num, write=True)
    kind.delete(conn, num, entry.if_match)
    return Outcome(204)


def _get(conn: Connection, context: Context, entry: Entry, address: Address, query: str) -> Any:
    if address.key is not None:
        authorize(context.request, address.fhir_type.name, "read")
        kind, num = address.resolve(conn)
        Visibility.of(context.request).check(conn, kind, num)
        resource = kind.read(conn, num)
        return Outcome(200, None if entry.method == "HEAD" else resource, _location(resource))
    authorize(context.request, address.fhir_type.name, "search")
    base = base_url(context.request)
    searchset = search_in(
        conn,
        context.server.registry,
        address.kinds,
        condition_pairs(query),
        self_url=f"{base}/{entry.url.partition('?')[0].strip('/')}",
        server_base=base,
        patient=context.patient(),
        visible=Visibility.of(context.request).rows,
    )
    return Outcome(200, searchset)


def _operation(conn: Connection, context: Context, entry: Entry, path: str, query: str) -> Any:
    """`Type/$validate`, `Type/id/$validate` (in a savepoint, rolled back) and the
    terminology operations, scope-checked as their routes are."""
    parts = [part for part in path.strip("/").split("/") if part]
    name, target = parts[-1], "/".join(parts[:-1])
    terminology = operation_named(target, name) if len(parts) == 2 else None
    if terminology is not None:
        authorize(context.request, "ValueSet" if name == "$expand" else "CodeSystem", "search")
        return Outcome(200, terminology(conn, parameters_of(query, entry.resource)))
    if name != "$validate" or entry.method != "POST":
        raise NotSupported(f"Operation {entry.method} {path} is not supported in a Bundle entry")
    address = context.server.registry.address(target)
    authorize(context.request, address.fhir_type.name, "create")
    if address.key is None:
        work = create_check(context.request, address.kind_for_create, entry.resource)
    else:
        work = instance_check(context.request, address.resolve, entry.resource)
    error: FhirError | None = None
    try:
        dry_run_in(conn, work)
    except FhirError as failure:
        error = failure
    outcome, status = verdict(error)
    return Outcome(status, outcome)


Handler = Callable[[Connection, Context, Entry, Address, str], Outcome]
HANDLERS: dict[str, Handler] = {
    "POST": _post,
    "PUT": _put,
    "PATCH": _patch,
    "DELETE": _delete,
    "GET": _get,
    "HEAD": _get,
}


def _location(resource: dict[str, Any]) -> str:
    return f"{resource['resourceType']}/{resource['id']}"


def _entry_error(request: Request, entry: Entry, error: Exception) -> FhirError:
    """The error of an entry, naming the entry; database refusals as 409 / 400; nothing
    the caller may not see (`withheld`)."""
    if isinstance(error, IntegrityError):
        error = Conflict("The change conflicts with existing data (a duplicate or a dangling link)")
    elif isinstance(error, DataError):
        error = Invalid("A value does not fit its warehouse column (too long or out of range)")
    assert isinstance(error, FhirError)
    error = withheld(request, error)
    expression = [
        f"Bundle.entry[{entry.index}].resource.{element_path(item)}"
        for item in error.expression or []
    ]
    return FhirError(
        f"{entry.label}: {error.diagnostics}",
        expression=expression or [f"Bundle.entry[{entry.index}]"],
        status=error.status,
        code=error.code,
    )


# --- transaction and batch -----------------------------------------------------------------


def run_transaction(conn: Connection, context: Context, entries: list[Entry]) -> list[Outcome]:
    """Every entry in `conn`, in processing order; the first failure aborts (raises).

    It works on copies of the entries and a fresh fullUrl map: the transaction runner may
    run it again from scratch after a deadlock, and the first try's rewrites must not leak.
    """
    context.assigned.clear()
    entries = copy.deepcopy(entries)
    outcomes: dict[int, Outcome] = {}
    for entry in transaction_order(entries):
        entry.resource = rewrite(entry.resource, context.assigned, entry.full_url)
        entry.url = rewrite_text(entry.url, context.assigned) or entry.url
        entry.if_none_exist = rewrite_text(entry.if_none_exist, context.assigned)
        try:
            outcome = run_entry(conn, context, entry)
        except (FhirError, IntegrityError, DataError) as error:
            raise _entry_error(context.request, entry, error) from None
        if entry.method == "POST" and entry.full_url and outcome.location:
            context.assigned[entry.full_url] = outcome.location
        outcomes[entry.index] = outcome
    return [outcomes[entry.index] for entry in entries]


def run_batch(context: Context, entries: list[Entry]) -> list[Outcome | FhirError]:
    """Each entry in its own transaction, in the order sent; failures are outcomes."""
    outcomes: list[Outcome | FhirError] = []
    for entry in entries:
        try:
            outcomes.append(
                context.server.run_write(partial(run_entry, context=context, entry=entry))
            )
        except (FhirError, IntegrityError, DataError) as error:
            outcomes.append(_entry_error(context.request, entry, error))
    return outcomes


def response_entry(request: Request, outcome: Outcome | FhirError) -> dict[str, Any]:
    """The entry of the response Bundle for one outcome."""
    if isinstance(outcome, FhirError):
        return {"response": {"status": _status(outcome.status), "outcome": outcome.outcome()}}
    answer: dict[str, Any] = {"status": _status(outcome.status)}
    entry: dict[str, Any] = {}
    resource = outcome.resource
    if outcome.location:
        answer["location"] = outcome.location
        entry["fullUrl"] = f"{base_url(request)}/{outcome.location}"
    if resource is not None and resource.get("meta", {}).get("versionId"):
        answer["etag"] = resource_headers(resource)["ETag"]
        answer["lastModified"] = resource["meta"]["lastUpdated"]
    minimal = "return=minimal" in request.headers.get("prefer", "")
    if resource is not None and not minimal:
        entry["resource"] = resource
    entry["response"] = answer
    return entry


def _status(code: int) -> str:
    return f"{code} {http.HTTPStatus(code).phrase}"


def install_bundle_routes(app: FastAPI, server: Server) -> None:
    """POST on the base URL, with and without the trailing slash. Scopes are checked per
    entry (the entry's type and interaction), not for the route."""

    async def transaction_or_batch(request: Request) -> Response:
        body, _ = await read_body(request)
        kind, entries = parse_bundle(body)
        context = Context(server, request)
        if kind == "transaction":
            outcomes: list[Any] = await run_in_threadpool(
                server.run_write, lambda conn: run_transaction(conn, context, entries)
            )
        else:
            outcomes = await run_in_threadpool(run_batch, context, entries)
        answer = {
            "resourceType": "Bundle",
            "type": f"{kind}-response",
            "entry": [response_entry(request, outcome) for outcome in outcomes],
        }
        return fhir_response(request, answer)

    for path in (BASE, BASE + "/"):
        app.add_api_route(
            path,
            transaction_or_batch,
            methods=["POST"],
            tags=["Batch and transaction"],
            include_in_schema=path.endswith("/"),
            name=f"post {path}",
            openapi_extra=BUNDLE_DOC,
        )


_BUNDLE = {"$ref": "#/components/schemas/Bundle"}
_OUTCOME = {"$ref": "#/components/schemas/OperationOutcome"}
BUNDLE_DOC: dict[str, Any] = {
    "summary": "Run a transaction (all or nothing) or a batch (entry by entry) Bundle",
    "requestBody": {
        "required": True,
        "content": {
            "application/fhir+json": {"schema": _BUNDLE},
            "application/json": {"schema": _BUNDLE},
        },
    },
    "responses": {
        "200": {
            "description": "A transaction-response or batch-response Bundle",
            "content": {"application/fhir+json": {"schema": _BUNDLE}},
        },
        "400": {
            "description": "Invalid Bundle",
            "content": {"application/fhir+json": {"schema": _OUTCOME}},
        },
    },
}
