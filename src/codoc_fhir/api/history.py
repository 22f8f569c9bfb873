"""History and vread: `/Type/{id}/_history[/{vid}]`, `/Type/_history`, `/_history`.

Versions are kept by the generic writes (resources/history.py); here they are answered as
`history` Bundles, newest first, each entry with its `request` (what was done) and
`response` (status, ETag, date), with `_since`, `_at`, `_count` and opaque `next` links.
The Codoc paths (`/procedure/12/_history/1/`) and sub-paths answer the same.

Scopes: instance and type history need the `history` interaction (a read letter) on the
type, vread the `vread` one; the system history, like every route not named after a
type, needs a wildcard scope. A patient-scoped caller only ever sees versions of its
patient's resources.
"""

from __future__ import annotations

import http
from collections.abc import Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import FastAPI
from sqlalchemy import Connection
from sqlalchemy.engine import RowMapping
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from codoc_fhir.api.auth import authorize
from codoc_fhir.api.docs import custom_doc
from codoc_fhir.api.routes import (
    BASE,
    KindResolver,
    Server,
    _add,
    answer_resource,
    base_url,
    check_format,
    standard_resolver,
    sub_path_resolver,
)
from codoc_fhir.fhir.dates import format_instant
from codoc_fhir.fhir.errors import Invalid, NotFound
from codoc_fhir.fhir.references import key_number
from codoc_fhir.fhir.responses import fhir_response
from codoc_fhir.resources.base import Resource
from codoc_fhir.resources.history import (
    HistoryFilter,
    history_rows,
    stored_resource,
    vread,
)
from codoc_fhir.search.cursor import Cursor, CursorCodec
from codoc_fhir.search.model import DEFAULT_COUNT, MAX_COUNT
from codoc_fhir.search.types.date import parse_range

STATUS = {"POST": 201, "PUT": 200, "PATCH": 200, "DELETE": 204}
ANSWER_OPTIONS = ("_format", "_pretty")
CURSOR_SIGNATURE = "history"


# --- parameters ----------------------------------------------------------------------------


def parse_history_params(
    pairs: Sequence[tuple[str, str]], spec: HistoryFilter, codec: CursorCodec
) -> tuple[HistoryFilter, int, list[tuple[str, str]]]:
    """The filter, page size and the parameters to repeat in links; 400 for anything else."""
    count = DEFAULT_COUNT
    applied: list[tuple[str, str]] = []
    for key, value in pairs:
        if key == "_count":
            if not value.isdigit() or int(value) < 1:
                raise Invalid(f"_count must be a positive integer, got {value!r}", expression=[key])
            count = min(int(value), MAX_COUNT)
            applied.append((key, str(count)))
        elif key == "_since":
            spec = replace(spec, since=parse_range(value)[0])
            applied.append((key, value))
        elif key == "_at":
            start, end = parse_range(value)
            spec = replace(spec, at_start=start, at_end=end)
            applied.append((key, value))
        elif key == "_cursor":
            spec = replace(spec, before=codec.decode(value, CURSOR_SIGNATURE).key)
        elif key not in ANSWER_OPTIONS:
            raise Invalid(
                f"Unknown history parameter {key!r} (use _count, _since, _at)", expression=[key]
            )
    return spec, count, applied


# --- the Bundle ----------------------------------------------------------------------------


def _status(code: int) -> str:
    return f"{code} {http.HTTPStatus(code).phrase}"


def history_entry(row: RowMapping, server_base: str) -> dict[str, Any]:
    """One version: the resource (none for a delete), what was asked and what was answered."""
    method, fhir_type, fhir_id = row["method"], row["fhir_type"], row["fhir_id"]
    entry: dict[str, Any] = {"fullUrl": f"{server_base}/{fhir_type}/{fhir_id}"}
    resource = stored_resource(row)
    if resource is not None:
        entry["resource"] = resource
    entry["request"] = {
        "method": method,
        "url": fhir_type if method == "POST" else f"{fhir_type}/{fhir_id}",
    }
    entry["response"] = {
        "status": _status(STATUS.get(method, 200)),
        "etag": f'W/"{row["version_id"]}"',
        "lastModified": format_instant(row["history_date"]),
    }
    return entry


def history_bundle(
    conn: Connection,
    spec: HistoryFilter,
    pairs: Sequence[tuple[str, str]],
    self_url: str,
    server_base: str,
    codec: CursorCodec,
) -> dict[str, Any]:
    """The `history` Bundle of the versions `spec` names, one page of them (`codec` makes
    the paging cursors opaque, like a search's)."""
    spec, count, applied = parse_history_params(pairs, spec, codec)
    rows, total, more = history_rows(conn, spec, count)
    links = [_link("self", self_url, applied)]
    if more and rows:
        cursor = codec.encode(Cursor((), 0, int(rows[-1]["history_num"]), False, CURSOR_SIGNATURE))
        links.append(_link("next", self_url, [*applied, ("_cursor", cursor)]))
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "history",
        "total": total,
        "link": links,
    }
    if rows:
        bundle["entry"] = [history_entry(row, server_base) for row in rows]
    return bundle


def _link(relation: str, url: str, pairs: list[tuple[str, str]]) -> dict[str, str]:
    query = urlencode(pairs)
    return {"relation": relation, "url": f"{url}?{query}" if query else url}


def instance_history(
    conn: Connection,
    kind: Resource,
    num: int,
    pairs: Sequence[tuple[str, str]],
    self_url: str,
    server_base: str,
    codec: CursorCodec,
    patient: int | None = None,
) -> dict[str, Any]:
    """The versions of one resource; 404 when it never existed (or is another patient's)."""
    spec = HistoryFilter(instance=(kind.fhir_type, kind.fhir_id(num)), patient=patient)
    bundle = history_bundle(conn, spec, pairs, self_url, server_base, codec)
    if not bundle["total"]:
        if patient is not None:  # none of its versions is the caller's patient's
            raise NotFound(f"{kind.fhir_type} with ID {kind.fhir_id(num)} does not exist")
        current = kind.read(conn, num)  # 404 / 410; else it was written before versions
        if not any(key in ("_since", "_at", "_cursor") for key, _ in pairs):
            bundle["total"] = 1
            bundle["entry"] = [_unrecorded_entry(current, server_base)]
    return bundle


def _unrecorded_entry(resource: dict[str, Any], server_base: str) -> dict[str, Any]:
    """The current state of a resource written before versions were kept (e.g. by SQL)."""
    version = resource["meta"]["versionId"]
    method = "POST" if version == "1" else "PUT"
    return {
        "fullUrl": f"{server_base}/{resource['resourceType']}/{resource['id']}",
        "resource": resource,
        "request": {
            "method": method,
            "url": resource["resourceType"] + ("" if method == "POST" else f"/{resource['id']}"),
        },
        "response": {
            "status": _status(STATUS[method]),
            "etag": f'W/"{version}"',
            "lastModified": resource["meta"]["lastUpdated"],
        },
    }


# --- routes --------------------------------------------------------------------------------


def _urls(request: Request) -> tuple[str, str]:
    """The self URL (without the query) and the server base of a request."""
    origin = f"{request.url.scheme}://{request.url.netloc}"
    return origin + request.url.path.rstrip("/"), base_url(request)


def _pairs(request: Request) -> list[tuple[str, str]]:
    return list(request.query_params.multi_items())


def _patient(request: Request) -> int | None:
    return getattr(request.state, "patient_restriction", None)


def _instance_endpoint(server: Server, resolve: KindResolver) -> Any:
    async def history(request: Request, ident: str) -> Response:
        check_format(request)
        self_url, server_base = _urls(request)

        def work(conn: Connection) -> dict[str, Any]:
            kind, num = resolve(conn, ident)
            return instance_history(
                conn,
                kind,
                num,
                _pairs(request),
                self_url,
                server_base,
                server.registry.cursors,
                _patient(request),
            )

        return fhir_response(request, await run_in_threadpool(server.run_read, work))

    return history


def _vread_endpoint(server: Server, resolve: KindResolver) -> Any:
    async def version_read(request: Request, ident: str, vid: str) -> Response:
        check_format(request)
        version = key_number(vid)

        def work(conn: Connection) -> dict[str, Any]:
            kind, num = resolve(conn, ident)
            if version is None:
                raise NotFound(f"{kind.fhir_type}/{ident} has no version {vid!r}")
            return vread(conn, kind, num, version, _patient(request))

        return answer_resource(request, await run_in_threadpool(server.run_read, work))

    return version_read


def _type_endpoint(server: Server, kinds: Sequence[Resource] | None) -> Any:
    async def history(request: Request) -> Response:
        check_format(request)
        self_url, server_base = _urls(request)
        spec = HistoryFilter(kinds=kinds, patient=_patient(request))

        def work(conn: Connection) -> dict[str, Any]:
            return history_bundle(
                conn, spec, _pairs(request), self_url, server_base, server.registry.cursors
            )

        return fhir_response(request, await run_in_threadpool(server.run_read, work))

    return history


def _routes(
    app: FastAPI,
    server: Server,
    path: str,
    kinds: Sequence[Resource],
    resolve: KindResolver,
    tag: str,
    show: bool,
) -> None:
    every = custom_doc(f"Versions of every {tag}, newest first (a history Bundle)", "Bundle")
    _add(app, f"{path}/_history", _type_endpoint(server, kinds), "GET", tag, show, every)
    item = path + "/{ident}/_history"
    one = custom_doc(f"Versions of one {tag}, newest first (a history Bundle)", "Bundle")
    _add(app, item, _instance_endpoint(server, resolve), "GET", tag, show, one)
    _add(app, item + "/{vid}", _vread_endpoint(server, resolve), "GET", tag, show)


def install_history_routes(app: FastAPI, server: Server) -> None:
    """Every history route; call before the instance routes (`/procedure/{ident}`) and the
    Codoc sub-paths' routes go first, so that `/encounter/movement/_history` is theirs."""
    registry = server.registry
    for kind in registry.sub_paths():
        path = f"{BASE}/{kind.codoc_path}"
        _routes(app, server, path, [kind], sub_path_resolver(kind), kind.fhir_type, True)
    for fhir_type in registry:
        kinds = fhir_type.kinds
        codoc = f"{BASE}/{fhir_type.codoc_path}"
        _routes(app, server, codoc, kinds, fhir_type.resolve_codoc_key, fhir_type.name, True)
        standard = f"{BASE}/{fhir_type.name}"
        _routes(app, server, standard, kinds, standard_resolver(fhir_type), fhir_type.name, False)
    everything = custom_doc("Versions of every resource, newest first (a history Bundle)", "Bundle")
    _add(app, f"{BASE}/_history", _type_endpoint(server, None), "GET", "History", True, everything)


# --- Bundle entries ------------------------------------------------------------------------


def split_history(path: str) -> tuple[str, str | None] | None:
    """(`Procedure/1`, `2`) for `Procedure/1/_history/2`, (`Procedure`, None) for
    `Procedure/_history`, (``, None) for `_history`; None when it is no history URL."""
    parts = [part for part in path.strip("/").split("/") if part]
    if "_history" not in parts:
        return None
    at = parts.index("_history")
    tail = parts[at + 1 :]
    if len(tail) > 1:
        raise NotFound(f"No FHIR endpoint at {path!r}")
    return "/".join(parts[:at]), tail[0] if tail else None


def run_history_entry(
    conn: Connection, server: Server, request: Request, path: str, query: str
) -> dict[str, Any] | None:
    """What a Bundle entry `GET <history URL>` answers (None: `path` is no history URL).

    Scopes are checked as for the routes: `history` / `vread` on the type, a wildcard
    scope for the system history.
    """
    target = split_history(path)
    if target is None:
        return None
    rest, vid = target
    pairs = parse_qsl(query, keep_blank_values=True)
    server_base = base_url(request)
    self_url = f"{server_base}/{path.strip('/')}"
    if not rest:
        authorize(request, "History", "history")
        spec = HistoryFilter(patient=_patient(request))
        return history_bundle(conn, spec, pairs, self_url, server_base, server.registry.cursors)
    address = server.registry.address(rest)
    name = address.fhir_type.name
    if address.key is None:
        authorize(request, name, "history")
        spec = HistoryFilter(kinds=address.kinds, patient=_patient(request))
        return history_bundle(conn, spec, pairs, self_url, server_base, server.registry.cursors)
    authorize(request, name, "vread" if vid is not None else "history")
    kind, num = address.resolve(conn)
    if vid is None:
        return instance_history(
            conn,
            kind,
            num,
            pairs,
            self_url,
            server_base,
            server.registry.cursors,
            _patient(request),
        )
    version = key_number(vid)
    if version is None:
        raise NotFound(f"{name}/{address.key} has no version {vid!r}")
    return vread(conn, kind, num, version, _patient(request))
