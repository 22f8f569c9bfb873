"""_include and _revinclude: the resources the matches point at, and those pointing at them.

Both follow the reference parameters kinds declare (`RefTarget`: type, id prefix, column),
load the targets in one query per target kind, and never repeat a resource already in the
page. An included resource must pass the checks of a direct read of its own type: the
search scope's `visible(kind)` condition (scopes and patient restriction of that type)
is part of the query, and a kind the caller may not read is not queried at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import RowMapping

from codoc_fhir.search.clauses import restriction
from codoc_fhir.search.kind import SearchKind
from codoc_fhir.search.model import MAX_COUNT, IncludeSpec, SearchRequest

Matched = Sequence[tuple[SearchKind, RowMapping, dict[str, Any]]]


def reference_param(kind: SearchKind, name: str) -> Any | None:
    param = kind.search_params.get(name)
    return param if param is not None and param.type == "reference" and param.target else None


def _target_kind(registry: Any, fhir_type: str, id_prefix: str) -> SearchKind | None:
    served = registry.types.get(fhir_type)
    for kind in served.kinds if served else ():
        if kind.id_prefix == id_prefix:
            return kind
    return None


def _fetch(
    conn: Connection, kind: SearchKind, column: Any, values: set[int], scope: Any
) -> list[dict[str, Any]]:
    allowed = (
        restriction(kind, scope.patient, None) if scope.visible is None else scope.visible(kind)
    )
    if allowed is None:
        return []
    query = kind.base_query().where(column.in_(sorted(values)), allowed).limit(MAX_COUNT)
    rows = list(conn.execute(query.order_by(kind.key)).mappings())
    return kind.read_many(conn, rows)


def _forward(
    conn: Connection, registry: Any, scope: Any, spec: IncludeSpec, matched: Matched
) -> list[dict[str, Any]]:
    wanted: dict[tuple[str, str], set[int]] = {}
    for kind, row, _ in matched:
        param = reference_param(kind, spec.param) if kind.fhir_type == spec.source_type else None
        for target in param.target if param else ():
            if spec.target_type and spec.target_type != target.fhir_type:
                continue
            value = row.get(target.column.name)
            if value is not None:
                wanted.setdefault((target.fhir_type, target.id_prefix), set()).add(value)
    found = []
    for (fhir_type, prefix), values in wanted.items():
        target_kind = _target_kind(registry, fhir_type, prefix)
        if target_kind is not None:
            found += _fetch(conn, target_kind, target_kind.key, values, scope)
    return found


def _reverse(
    conn: Connection, registry: Any, scope: Any, spec: IncludeSpec, matched: Matched
) -> list[dict[str, Any]]:
    keys: dict[tuple[str, str], set[int]] = {}
    for kind, row, _ in matched:
        keys.setdefault((kind.fhir_type, kind.id_prefix), set()).add(row[kind.key.name])
    served = registry.types.get(spec.source_type)
    found = []
    for source in served.kinds if served else ():
        param = reference_param(source, spec.param)
        for target in param.target if param else ():
            if spec.target_type and spec.target_type != target.fhir_type:
                continue
            values = keys.get((target.fhir_type, target.id_prefix))
            if values:
                found += _fetch(conn, source, target.column, values, scope)
    return found


def included_resources(
    conn: Connection, registry: Any, scope: Any, request: SearchRequest, matched: Matched
) -> list[dict[str, Any]]:
    """Resources named by _include/_revinclude for the page, each once, none of the page."""
    seen = {(resource["resourceType"], resource["id"]) for _, _, resource in matched}
    included = []
    for spec in request.includes:
        included += _forward(conn, registry, scope, spec, matched)
    for spec in request.revincludes:
        included += _reverse(conn, registry, scope, spec, matched)
    unique = []
    for resource in included:
        key = (resource["resourceType"], resource["id"])
        if key not in seen:
            seen.add(key)
            unique.append(resource)
    return unique


def check_include(registry: Any, spec: IncludeSpec) -> bool:
    """Whether `spec` names a reference parameter declared on its source type."""
    served = registry.types.get(spec.source_type)
    return any(reference_param(kind, spec.param) for kind in (served.kinds if served else ()))
