"""Batch and transaction Bundles posted to the base URL (`POST /v4.3.0/`).

A `transaction` runs in one database transaction: every entry succeeds or nothing is
stored, and the answer is the first failure's OperationOutcome with its status. Its
entries run in the FHIR processing order (DELETE, POST, PUT/PATCH, GET); POSTs are further
ordered so that an entry runs after the entries whose `urn:uuid:` fullUrl it references,
and every reference to such a fullUrl is rewritten to the id assigned before the resource
is validated. A `batch` runs each entry in its own transaction, in the order sent, and
reports each outcome in its response entry.

Entries are routed like requests (`Patient`, `patient/1`, `encounter/movement/3`,
`Procedure?subject=Patient/1`) through `Registry.address` and run the very interactions
the REST routes call (interactions/), `Joined` to the entry's transaction, so they are
authorized one by one by the same Caller sequence (scopes and patient-scoped tokens).
"""

from __future__ import annotations

import base64
import dataclasses
import http
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import FastAPI
from sqlalchemy import Connection
from sqlalchemy.exc import DataError, IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from codoc_fhir.api.bundle_entries import (
    Entry,
    parse_bundle,
    rewrite,
    rewrite_text,
    transaction_order,
)
from codoc_fhir.api.bundle_groups import create_group, groupable_kind, referenced_full_urls
from codoc_fhir.api.origin import public_base
from codoc_fhir.api.routes import (
    BASE,
    JSON_PATCH,
    Server,
    read_body,
    resource_headers,
)
from codoc_fhir.api.terminology import operation_named, parameters_of
from codoc_fhir.api.visibility import caller_of
from codoc_fhir.fhir.errors import (
    Conflict,
    FhirError,
    Forbidden,
    Invalid,
    NotSupported,
    element_path,
)
from codoc_fhir.fhir.responses import fhir_response
from codoc_fhir.interactions import crud, history
from codoc_fhir.interactions.caller import Caller
from codoc_fhir.interactions.conditional import condition_pairs
from codoc_fhir.interactions.database import Joined
from codoc_fhir.interactions.operations import OperationCall, operation
from codoc_fhir.interactions.search import search
from codoc_fhir.resources.base import Resource
from codoc_fhir.resources.registry import Address
from codoc_fhir.search.matches import resolve_conditional_references


@dataclass
class Outcome:
    """What an entry did: HTTP status, the resource (or searchset) and where it lives."""

    status: int
    resource: dict[str, Any] | None = None
    location: str | None = None


@dataclass
class Context:
    """The request the Bundle came in, its caller, the server, and the fullUrls assigned."""

    server: Server
    request: Request
    caller: Caller
    assigned: dict[str, str] = field(default_factory=dict)  # fullUrl -> "Type/id"


# The interaction of an entry, by method (what its scopes must grant).
WRITES = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


# --- one entry -----------------------------------------------------------------------------


def run_entry(conn: Connection, context: Context, entry: Entry) -> Outcome:
    """Run one entry in `conn`, through the interaction the matching REST route calls."""
    handler = HANDLERS.get(entry.method)
    if handler is None:
        raise NotSupported(f"Method {entry.method} is not supported in a Bundle entry")
    db = Joined(conn, context.server.registry)
    path, _, query = entry.url.partition("?")
    if "$" in path:
        return _operation(db, context, entry, path, query)
    if entry.method in ("GET", "HEAD"):
        versions = _history(db, context, path, query)
        if versions is not None:
            return Outcome(200, None if entry.method == "HEAD" else versions)
    address = context.server.registry.address(path)
    if isinstance(entry.resource, dict) and entry.method in ("POST", "PUT"):
        entry.resource = _resolved(conn, context, entry, address)
    return handler(db, context, entry, address, query)


def _resolved(conn: Connection, context: Context, entry: Entry, address: Address) -> Any:
    """The entry's resource with its conditional references (`Practitioner?identifier=`)
    resolved as the caller may see them; as sent when the caller may not write it at all
    (the interaction then refuses it, in its own order of checks)."""
    try:
        patient = context.caller.patient(address.fhir_type.name, WRITES[entry.method])
    except Forbidden:
        return entry.resource
    return resolve_conditional_references(
        conn, context.server.registry.types, entry.resource, patient
    )


def _post(db: Joined, context: Context, entry: Entry, address: Address, query: str) -> Any:
    if address.key is not None or query:
        raise Invalid(
            "A POST entry's url is the type alone (Patient), conditions go in ifNoneExist"
        )
    resource, status = crud.create(
        db, context.caller, address, entry.resource, if_none_exist=entry.if_none_exist
    )
    return Outcome(status, resource, _location(resource))


def _put(db: Joined, context: Context, entry: Entry, address: Address, query: str) -> Any:
    context.caller.allow(address.fhir_type.name, "update")  # 403 before the condition's 400
    condition = _condition(query) if address.key is None else None
    resource, status = crud.update(
        db, context.caller, address, entry.resource, if_match=entry.if_match, condition=condition
    )
    return Outcome(status, resource, _location(resource))


def _patch(db: Joined, context: Context, entry: Entry, address: Address, query: str) -> Any:
    context.caller.allow(address.fhir_type.name, "patch")  # 403 before the body's 400
    changes, json_patch = _patch_body(entry.resource, address.fhir_type.name)
    condition = _condition(query) if address.key is None else None
    resource = crud.patch(
        db,
        context.caller,
        address,
        changes,
        if_match=entry.if_match,
        json_patch=json_patch,
        condition=condition,
    )
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


def _delete(db: Joined, context: Context, entry: Entry, address: Address, query: str) -> Any:
    context.caller.allow(address.fhir_type.name, "delete")  # 403 before the condition's 400
    condition = _condition(query) if address.key is None else None
    crud.delete(db, context.caller, address, if_match=entry.if_match, condition=condition)
    return Outcome(204)


def _get(db: Joined, context: Context, entry: Entry, address: Address, query: str) -> Any:
    if address.key is not None:
        resource = crud.read(db, context.caller, address)
        return Outcome(200, None if entry.method == "HEAD" else resource, _location(resource))
    searchset = search(
        db,
        context.caller,
        address,
        condition_pairs(query),
        self_url=f"{context.caller.base_url}/{entry.url.partition('?')[0].strip('/')}",
    )
    return Outcome(200, searchset)


def _history(db: Joined, context: Context, path: str, query: str) -> dict[str, Any] | None:
    """What a `GET <history URL>` entry answers (None: `path` is no history URL)."""
    target = history.split_history(path)
    if target is None:
        return None
    rest, vid = target
    pairs = parse_qsl(query, keep_blank_values=True)
    self_url = f"{context.caller.base_url}/{path.strip('/')}"
    if not rest:
        return history.type_history(db, context.caller, None, pairs, self_url)
    address = context.server.registry.address(rest)
    if address.key is None:
        return history.type_history(db, context.caller, address, pairs, self_url)
    if vid is None:
        return history.resource_history(db, context.caller, address, pairs, self_url)
    return history.vread(db, context.caller, address, vid)


def _operation(db: Joined, context: Context, entry: Entry, path: str, query: str) -> Any:
    """`Type/$validate`, `Type/id/$validate` (in a savepoint, rolled back) and the
    terminology operations, scope-checked as their routes are."""
    parts = [part for part in path.strip("/").split("/") if part]
    name, target = parts[-1], "/".join(parts[:-1])
    terminology = operation_named(target, name) if len(parts) == 2 else None
    if terminology is not None:
        context.caller.allow("ValueSet" if name == "$expand" else "CodeSystem", "search")
        return Outcome(200, terminology(db.conn, parameters_of(query, entry.resource)))
    if name != "$validate" or entry.method != "POST":
        raise NotSupported(f"Operation {entry.method} {path} is not supported in a Bundle entry")
    address = context.server.registry.address(target)
    call = OperationCall(name, address, entry.resource)
    outcome, status = operation(db, context.caller, call)
    return Outcome(status, outcome)


Handler = Callable[[Joined, Context, Entry, Address, str], Outcome]
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


def _entry_caller(context: Context, entry: Entry) -> Caller:
    """The caller as confined for the entry's write (what `withheld` is judged on)."""
    interaction = WRITES.get(entry.method)
    if interaction is None:
        return context.caller
    try:
        address = context.server.registry.address(entry.url.partition("?")[0])
        return context.caller.allow(address.fhir_type.name, interaction)
    except FhirError:
        return context.caller


def _entry_error(context: Context, entry: Entry, error: Exception) -> FhirError:
    """The error of an entry, naming the entry; database refusals as 409 / 400; nothing
    the caller may not see (`withheld`)."""
    if isinstance(error, IntegrityError):
        error = Conflict("The change conflicts with existing data (a duplicate or a dangling link)")
    elif isinstance(error, DataError):
        error = Invalid("A value does not fit its warehouse column (too long or out of range)")
    assert isinstance(error, FhirError)
    error = _entry_caller(context, entry).withheld(error)
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
    The copies are shallow: `rewrite` gives each entry a new resource rather than changing
    the one sent.
    """
    context.assigned.clear()
    entries = [dataclasses.replace(entry) for entry in entries]
    outcomes: dict[int, Outcome] = {}
    registry = context.server.registry
    group: list[Entry] = []
    group_kind: Resource | None = None
    referenced = referenced_full_urls(entries)
    for entry in transaction_order(entries):
        entry.resource = rewrite(entry.resource, context.assigned, entry.full_url)
        entry.url = rewrite_text(entry.url, context.assigned) or entry.url
        entry.if_none_exist = rewrite_text(entry.if_none_exist, context.assigned)
        kind = groupable_kind(registry, entry, referenced)
        if group and kind is not group_kind:
            _run_group(conn, context, group_kind, group, outcomes)
            group = []
        if kind is not None:
            group.append(entry)
            group_kind = kind
            continue
        _run_one(conn, context, entry, outcomes)
    if group:
        _run_group(conn, context, group_kind, group, outcomes)
    return [outcomes[entry.index] for entry in entries]


def _run_one(
    conn: Connection, context: Context, entry: Entry, outcomes: dict[int, Outcome]
) -> None:
    try:
        outcome = run_entry(conn, context, entry)
    except (FhirError, IntegrityError, DataError) as error:
        raise _entry_error(context, entry, error) from None
    if entry.method == "POST" and entry.full_url and outcome.location:
        context.assigned[entry.full_url] = outcome.location
    outcomes[entry.index] = outcome


def _run_group(
    conn: Connection,
    context: Context,
    kind: Resource | None,
    group: list[Entry],
    outcomes: dict[int, Outcome],
) -> None:
    """A run of plain creates of one kind together (api/bundle_groups.py); one at a time
    when there is only one, or when the group is refused (to name the entry at fault)."""
    created = None
    if kind is not None and len(group) > 1:
        created = create_group(conn, context.server.registry, context.caller, kind, group)
    if created is None:
        for entry in group:
            _run_one(conn, context, entry, outcomes)
        return
    for entry, resource in zip(group, created, strict=True):
        location = _location(resource)
        if entry.full_url:
            context.assigned[entry.full_url] = location
        outcomes[entry.index] = Outcome(201, resource, location)


def run_batch(context: Context, entries: list[Entry]) -> list[Outcome | FhirError]:
    """Each entry in its own transaction, in the order sent; failures are outcomes."""
    outcomes: list[Outcome | FhirError] = []
    for entry in entries:
        try:
            outcomes.append(
                context.server.run_write(partial(run_entry, context=context, entry=entry))
            )
        except (FhirError, IntegrityError, DataError) as error:
            outcomes.append(_entry_error(context, entry, error))
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
        entry["fullUrl"] = f"{public_base(request)}/{outcome.location}"
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
        context = Context(server, request, caller_of(request))
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
