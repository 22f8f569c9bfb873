"""`Patient/{id}/$everything`: the patient and every resource of its compartment.

The answer is a searchset Bundle paged like a search: `_count` resources a page (default
50, at most 1000), a `next` link carrying an opaque `_cursor` (the position of a kind in
the answer's order and the last primary key sent). The order is the Patient, then every
compartment kind in registry order, each by primary key, so a page is one query per kind
it spans plus the kinds' batch loads. `_type` limits the types, `_since` keeps resources
updated at or after an instant.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI
from sqlalchemy import Connection, and_, false, func, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from codoc_fhir.api.bulk_export import (
    compartment_types,
    readable_types,
    requested_types,
    since_of,
)
from codoc_fhir.api.origin import public_origin
from codoc_fhir.api.routes import BASE, _add, base_url, check_format
from codoc_fhir.api.visibility import Visibility
from codoc_fhir.bulk.export import exported_kinds, rows_after, rows_clause
from codoc_fhir.fhir.errors import Invalid, NotFound
from codoc_fhir.fhir.responses import fhir_response
from codoc_fhir.resources.base import Resource

DEFAULT_COUNT = 50
MAX_COUNT = 1000
PARAMS = {"_type", "_since", "_count", "_cursor", "_format", "_pretty"}


def _count(pairs: list[tuple[str, str]]) -> int:
    values = [value for key, value in pairs if key == "_count"]
    if not values:
        return DEFAULT_COUNT
    if not (values[-1].isascii() and values[-1].isdigit()) or not 0 < int(values[-1]) <= MAX_COUNT:
        raise Invalid(f"_count must be a number from 1 to {MAX_COUNT}", expression=["_count"])
    return int(values[-1])


def _cursor(pairs: list[tuple[str, str]]) -> tuple[int, int]:
    """(kind position, last key sent); (0, 0) for the first page."""
    values = [value for key, value in pairs if key == "_cursor"]
    if not values:
        return 0, 0
    position, _, after = values[-1].partition(".")
    cursor = position + after
    if not (cursor.isascii() and position.isdigit() and after.isdigit() and len(cursor) < 24):
        raise Invalid("Invalid paging cursor", expression=["_cursor"])
    return int(position), int(after)


def _kinds(registry: Any, types: list[str]) -> list[Resource]:
    return [kind for name in types for kind in exported_kinds(registry, name, True)]


def everything_page(
    conn: Connection,
    registry: Any,
    patient_num: int,
    types: list[str],
    pairs: list[tuple[str, str]],
    visibility: Visibility,
) -> tuple[list[dict[str, Any]], int, str | None]:
    """One page: (resources, total over all pages, next cursor or None); each kind's rows
    are the compartment's that the caller's `visibility` lets through."""
    since, count = since_of(pairs), _count(pairs)
    start, after = _cursor(pairs)
    kinds = _kinds(registry, types)
    clauses = [_visible_clause(kind, patient_num, since, visibility) for kind in kinds]
    total = sum(
        conn.execute(select(func.count()).select_from(kind.table).where(clause)).scalar_one()
        for kind, clause in zip(kinds, clauses, strict=True)
    )
    found: list[dict[str, Any]] = []
    for position in range(start, len(kinds)):
        kind, remaining = kinds[position], count - len(found)
        first = after if position == start else 0
        rows = rows_after(conn, kind, clauses[position], first, remaining + 1)
        if len(rows) > remaining:
            rows = rows[:remaining]
            found += kind.read_many(conn, rows)
            last = rows[-1][kind.key.name] if rows else first
            return found, total, f"{position}.{last}"
        found += kind.read_many(conn, rows)
    return found, total, None


def _visible_clause(kind: Resource, patient_num: int, since: Any, visibility: Visibility) -> Any:
    """The compartment's rows of `kind` since `since` that the caller may receive."""
    visible = visibility.rows(kind)
    return and_(
        rows_clause(kind, None, patient_num, since), false() if visible is None else visible
    )


def _link(relation: str, url: str, pairs: list[tuple[str, str]]) -> dict[str, str]:
    query = urlencode(pairs)
    return {"relation": relation, "url": f"{url}?{query}" if query else url}


def everything_bundle(
    resources: list[dict[str, Any]],
    total: int,
    next_cursor: str | None,
    pairs: list[tuple[str, str]],
    self_url: str,
    server_base: str,
) -> dict[str, Any]:
    """The searchset Bundle of one page, with its self and next links."""
    kept = [(key, value) for key, value in pairs if key not in ("_cursor", "_format", "_pretty")]
    links = [_link("self", self_url, pairs)]
    if next_cursor is not None:
        links.append(_link("next", self_url, [*kept, ("_cursor", next_cursor)]))
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": links,
    }
    entries = [
        {
            "fullUrl": f"{server_base}/{resource['resourceType']}/{resource['id']}",
            "resource": resource,
            "search": {"mode": "match"},
        }
        for resource in resources
    ]
    if entries:
        bundle["entry"] = entries
    return bundle


def everything_endpoint(server: Any) -> Any:
    """The handler of GET `/Patient/{patient_id}/$everything`."""

    async def everything(request: Request, patient_id: str) -> Response:
        check_format(request)
        pairs = list(request.query_params.multi_items())
        for key, _ in pairs:
            if key not in PARAMS:
                message = f"$everything parameter {key!r} is not supported"
                raise Invalid(message, expression=[key], code="not-supported")
        candidates = compartment_types(server.registry)
        explicit = requested_types(pairs, candidates)
        types, confined = readable_types(request, explicit or candidates, explicit is not None)
        visibility = Visibility.of(request)

        def work(conn: Connection) -> tuple[list[dict[str, Any]], int, str | None]:
            kind, num = server.registry.types["Patient"].resolve_id(patient_id)
            if confined is not None and num != confined:
                raise NotFound(f"Patient with ID {patient_id} does not exist")
            kind.fetch_row(conn, num)
            visibility.check(conn, kind, num)
            return everything_page(conn, server.registry, num, types, pairs, visibility)

        resources, total, next_cursor = await run_in_threadpool(server.run_read, work)
        self_url = public_origin(request) + request.url.path
        bundle = everything_bundle(
            resources, total, next_cursor, pairs, self_url, base_url(request)
        )
        return fhir_response(request, bundle)

    return everything


def install_everything_routes(app: FastAPI, server: Any) -> None:
    """`Patient/{id}/$everything` in both path forms: before `/Patient/{ident}`."""
    everything = everything_endpoint(server)
    summary = "Everything about one patient: the Patient and its compartment ($everything)"
    for name in ("patient", "Patient"):
        path = f"{BASE}/{name}/{{patient_id}}/$everything"
        _add(app, path, everything, "GET", "Patient", summary=summary)
