"""The concept sub-routes of CodeSystem.

`/codesystem/{code}/concept/` (POST one concept or a batch, GET the list) and
`/codesystem/{code}/concept/{key}/` (GET, PUT, PATCH, DELETE), where `key` is the concept
code or, when no concept has that code, its number. The same routes hang under the standard
path `/CodeSystem/{id}/concept/...`. A concept is answered as
`{"id", "code", "display", "definition"?, "system"}`; errors are OperationOutcomes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from sqlalchemy import Connection, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from codoc_fhir.api.auth import check_patient
from codoc_fhir.api.routes import BASE, Endpoint, Server, _add, base_url, check_format, read_body
from codoc_fhir.api.visibility import Visibility
from codoc_fhir.fhir.errors import Invalid, NotFound, Required
from codoc_fhir.fhir.responses import fhir_response
from codoc_fhir.resources import codesystem_concepts as rows
from codoc_fhir.resources.base import check_if_match
from codoc_fhir.warehouse.schema import dwh_thesaurus, dwh_thesaurus_data

if TYPE_CHECKING:
    from codoc_fhir.resources.codesystem import CodeSystem

Thesaurus = tuple[int, str]  # (thesaurus_num, thesaurus_code)
Resolver = Callable[[Connection, str], Thesaurus]


def _resolver(kind: CodeSystem, by_code: bool) -> Resolver:
    """Find the thesaurus a path names: by code (Codoc path) or by number (standard path)."""

    def resolve(conn: Connection, ident: str) -> Thesaurus:
        if by_code:
            num: int | None = kind.resolve_codoc_key(conn, ident)
        else:
            num = kind.parse_fhir_id(ident)
        code = None
        if num is not None:
            code = conn.execute(
                select(dwh_thesaurus.c.thesaurus_code).where(dwh_thesaurus.c.thesaurus_num == num)
            ).scalar()
        if num is None or code is None:
            raise NotFound(f"CodeSystem {ident} does not exist")
        return num, str(code)

    return resolve


def _answer(request: Request, concept: Any, status: int = 200) -> Response:
    headers = {"ETag": f'W/"{concept.row_version}"'}
    if status == 201:
        headers["Location"] = (
            f"{base_url(request)}/codesystem/{concept.thesaurus_code}/concept/"
            f"{concept.thesaurus_data_num}/"
        )
    return fhir_response(request, rows.concept_json(concept), status, headers)


def _fetch(conn: Connection, num: int) -> Any:
    return conn.execute(
        select(dwh_thesaurus_data).where(dwh_thesaurus_data.c.thesaurus_data_num == num)
    ).one()


def _add_batch(conn: Connection, code: str, body: dict[str, Any]) -> list[Any]:
    """`{"concept": [...]}`: every concept or none."""
    items = body.get("concept")
    if not items:
        raise Required("Field 'concept' is required", expression=["concept"])
    if not isinstance(items, list):
        raise Invalid("concept must be a list of {code, display}", expression=["concept"])
    if body.get("resourceType", "CodeSystem") != "CodeSystem":
        raise Invalid(
            f"resourceType must be CodeSystem for a batch, got {body['resourceType']!r}",
            expression=["resourceType"],
        )
    nums = rows.insert_concepts(conn, code, items)
    rows.touch_thesaurus(conn, code)
    return [_fetch(conn, num) for num in nums]


def _create(server: Server, kind: CodeSystem, resolve: Resolver) -> Endpoint:
    async def create(request: Request, ident: str) -> Response:
        body, _ = await read_body(request)

        def work(conn: Connection) -> Any:
            num, code = resolve(conn, ident)
            check_patient(request, conn, kind, num, write=True)
            if isinstance(body, dict) and "concept" in body:
                return _add_batch(conn, code, body)
            rows.check_concept_body(body, code)
            rows.parse_concept(body, "concept")
            (num,) = rows.insert_concepts(conn, code, [body])
            rows.touch_thesaurus(conn, code)
            return _fetch(conn, num)

        created = await run_in_threadpool(server.run_write, work)
        if isinstance(created, list):
            answer = {"concept": [rows.concept_json(row) for row in created]}
            return fhir_response(request, answer, 200)
        return _answer(request, created, 201)

    return create


def _list(server: Server, kind: CodeSystem, resolve: Resolver) -> Endpoint:
    async def list_concepts(request: Request, ident: str) -> Response:
        check_format(request)

        def work(conn: Connection) -> list[Any]:
            num, code = resolve(conn, ident)
            Visibility.of(request).check(conn, kind, num)
            return rows.concepts_of(conn, [code])[code]

        found = await run_in_threadpool(server.run_read, work)
        return fhir_response(request, {"concept": [rows.concept_json(row) for row in found]})

    return list_concepts


def _read(server: Server, kind: CodeSystem, resolve: Resolver) -> Endpoint:
    async def read(request: Request, ident: str, key: str) -> Response:
        check_format(request)

        def work(conn: Connection) -> Any:
            num, code = resolve(conn, ident)
            Visibility.of(request).check(conn, kind, num)
            return rows.find_concept(conn, code, key)

        return _answer(request, await run_in_threadpool(server.run_read, work))

    return read


def _change(server: Server, kind: CodeSystem, resolve: Resolver, *, merge: bool) -> Endpoint:
    """PUT (the body replaces the concept) or PATCH (the body's fields are merged in)."""

    async def change(request: Request, ident: str, key: str) -> Response:
        body, _ = await read_body(request)
        if_match = request.headers.get("if-match")

        def work(conn: Connection) -> Any:
            num, code = resolve(conn, ident)
            check_patient(request, conn, kind, num, write=True)
            row = rows.find_concept(conn, code, key, lock=True)
            check_if_match(if_match, row.row_version)
            rows.check_concept_body(body, code)
            sent = body
            if merge:
                sent = {**rows.concept_json(row), **body}
                sent = {name: value for name, value in sent.items() if value is not None}
            rows.update_concept(conn, row, sent)
            rows.touch_thesaurus(conn, code)
            return _fetch(conn, row.thesaurus_data_num)

        return _answer(request, await run_in_threadpool(server.run_write, work))

    return change


def _delete(server: Server, kind: CodeSystem, resolve: Resolver) -> Endpoint:
    async def delete(request: Request, ident: str, key: str) -> Response:
        if_match = request.headers.get("if-match")

        def work(conn: Connection) -> None:
            num, code = resolve(conn, ident)
            check_patient(request, conn, kind, num, write=True)
            row = rows.find_concept(conn, code, key, lock=True)
            check_if_match(if_match, row.row_version)
            rows.delete_concepts(conn, server.settings, [row])
            rows.touch_thesaurus(conn, code)

        await run_in_threadpool(server.run_write, work)
        return Response(status_code=204)

    return delete


CONCEPT_SUMMARY = {
    "create": "Add a concept, or a batch of concepts, to a thesaurus",
    "list": "List the concepts of a thesaurus",
    "read": "Read one concept of a thesaurus",
    "put": "Replace one concept (its code and display)",
    "patch": "Change some fields of one concept",
    "delete": "Delete one concept (409 while facts use it)",
}


def install_concept_routes(app: FastAPI, server: Server, kind: CodeSystem) -> None:
    """Concept routes under `/codesystem/{code}/` and `/CodeSystem/{id}/`."""
    for prefix, by_code in (("codesystem", True), ("CodeSystem", False)):
        resolve = _resolver(kind, by_code)
        path = f"{BASE}/{prefix}/{{ident}}/concept"
        item = path + "/{key}"
        for where, endpoint, method, summary in (
            (path, _create(server, kind, resolve), "POST", CONCEPT_SUMMARY["create"]),
            (path, _list(server, kind, resolve), "GET", CONCEPT_SUMMARY["list"]),
            (item, _read(server, kind, resolve), "GET", CONCEPT_SUMMARY["read"]),
            (item, _change(server, kind, resolve, merge=False), "PUT", CONCEPT_SUMMARY["put"]),
            (item, _change(server, kind, resolve, merge=True), "PATCH", CONCEPT_SUMMARY["patch"]),
            (item, _delete(server, kind, resolve), "DELETE", CONCEPT_SUMMARY["delete"]),
        ):
            _add(app, where, endpoint, method, "CodeSystem", summary=summary)
