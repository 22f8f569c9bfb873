"""History and vread: the versions of a resource, of a type, of the whole server.

Versions are kept by the generic writes (resources/history.py); here they are answered as
`history` Bundles, newest first, each entry with its `request` (what was done) and
`response` (status, ETag, date), with `_since`, `_at`, `_count` and opaque `next` links.

Scopes: instance and type history need the `history` interaction (a read letter) on the
type, vread the `vread` one; the system history, like every route not named after a
type, needs a wildcard scope (its "type" is `History`). A patient-scoped caller only ever
sees versions of its patient's resources.
"""

from __future__ import annotations

import http
from collections.abc import Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Connection
from sqlalchemy.engine import RowMapping

from codoc_fhir.fhir.dates import format_instant
from codoc_fhir.fhir.errors import Invalid, NotFound
from codoc_fhir.fhir.references import key_number
from codoc_fhir.interactions.caller import Caller
from codoc_fhir.interactions.database import Database
from codoc_fhir.resources import history as versions
from codoc_fhir.resources.base import Resource
from codoc_fhir.resources.history import HistoryFilter, history_rows, stored_resource
from codoc_fhir.resources.registry import Address
from codoc_fhir.search.cursor import Cursor, CursorCodec
from codoc_fhir.search.model import DEFAULT_COUNT, MAX_COUNT
from codoc_fhir.search.types.date import parse_range

SYSTEM = "History"  # the scope "type" of the system history: a wildcard scope grants it

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


# --- the interactions ----------------------------------------------------------------------


def type_history(
    db: Database,
    caller: Caller,
    address: Address | None,
    pairs: Sequence[tuple[str, str]],
    self_url: str,
) -> dict[str, Any]:
    """The versions of every resource of the kinds addressed (None: of every type)."""
    name = SYSTEM if address is None else address.fhir_type.name
    caller = caller.allow(name, "history")
    kinds = None if address is None else address.kinds
    spec = HistoryFilter(kinds=kinds, patient=caller.patient_num)
    codec = db.registry.cursors
    return db.run_read(
        lambda conn: history_bundle(conn, spec, pairs, self_url, caller.base_url, codec)
    )


def resource_history(
    db: Database,
    caller: Caller,
    address: Address,
    pairs: Sequence[tuple[str, str]],
    self_url: str,
) -> dict[str, Any]:
    """The versions of the one resource addressed."""
    caller = caller.allow(address.fhir_type.name, "history")

    def work(conn: Connection) -> dict[str, Any]:
        kind, num = address.resolve(conn)
        return instance_history(
            conn,
            kind,
            num,
            pairs,
            self_url,
            caller.base_url,
            db.registry.cursors,
            caller.patient_num,
        )

    return db.run_read(work)


def vread(db: Database, caller: Caller, address: Address, vid: str) -> dict[str, Any]:
    """Version `vid` of the resource addressed; 404 for a version it never had."""
    caller = caller.allow(address.fhir_type.name, "vread")
    version = key_number(vid)

    def work(conn: Connection) -> dict[str, Any]:
        kind, num = address.resolve(conn)
        if version is None:
            raise NotFound(f"{kind.fhir_type}/{address.key} has no version {vid!r}")
        return versions.vread(conn, kind, num, version, caller.patient_num)

    return db.run_read(work)
