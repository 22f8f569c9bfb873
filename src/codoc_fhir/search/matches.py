"""Which rows a search names, without rendering them: conditional create (If-None-Exist)
and conditional references (`Practitioner?identifier=...` inside a resource)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from sqlalchemy import Connection, select

from codoc_fhir.fhir.errors import FhirError, Invalid
from codoc_fhir.search.execute import SearchScope, match_branches, union_all_any
from codoc_fhir.search.kind import SearchKind
from codoc_fhir.search.model import parse_search

# Result parameters make no sense in a condition: only filters (and _id, _lastUpdated).
_FILTERS_ONLY = ("_id", "_lastUpdated")


Kind = TypeVar("Kind", bound=SearchKind)


def find_matches(
    conn: Connection,
    kinds: Sequence[Kind],
    query_pairs: Iterable[tuple[str, str]],
    *,
    known_types: Iterable[str] = (),
    patient: int | None = None,
    limit: int = 2,
) -> list[tuple[Kind, int]]:
    """(kind, primary key) of up to `limit` rows of `kinds` matching the search criteria.

    The criteria are parsed strictly, as a type search would parse them (unknown parameter
    -> 400); a patient-scoped caller (`patient`) only matches that patient's rows.
    """
    pairs = list(query_pairs)
    for key, _ in pairs:
        if key.startswith("_") and key.split(":")[0] not in _FILTERS_ONLY:
            raise Invalid(f"{key} cannot be part of a condition", expression=[key])
    request = parse_search(pairs, kinds, known_types=known_types)
    if not request.filters:
        raise Invalid("The condition names no search criteria (e.g. identifier=system|value)")
    branches = match_branches(conn, SearchScope(kinds, kinds, patient=patient), request)
    if not branches:
        return []
    sub: Any = (branches[0] if len(branches) == 1 else union_all_any(*branches)).subquery()
    rows = conn.execute(select(sub.c.k, sub.c.p).order_by(sub.c.k, sub.c.p).limit(limit))
    return [(kinds[index], key) for index, key in rows]


def resolve_conditional_references(
    conn: Connection,
    types: Mapping[str, Any],
    value: Any,
    patient: int | None = None,
) -> Any:
    """A copy of `value` with each conditional reference (`Practitioner?identifier=X|1`, as
    Synthea writes them in transaction Bundles) replaced by `Type/id` of the one resource
    its search finds (`types`: FHIR type name -> its kinds, the registry's). One that finds
    none or several, or names no type served, stays as sent: kept with the other elements,
    or refused by the mapping that needs it, with that mapping's own message."""
    if isinstance(value, list):
        return [resolve_conditional_references(conn, types, item, patient) for item in value]
    if not isinstance(value, dict):
        return value
    resolved = {}
    for key, item in value.items():
        if key == "reference" and isinstance(item, str) and "?" in item:
            resolved[key] = _conditional_target(conn, types, item, patient) or item
        else:
            resolved[key] = resolve_conditional_references(conn, types, item, patient)
    return resolved


def _conditional_target(
    conn: Connection, types: Mapping[str, Any], reference: str, patient: int | None
) -> str | None:
    type_name, _, query = reference.partition("?")
    fhir_type = types.get(type_name)
    condition = parse_qsl(query, keep_blank_values=True)
    if fhir_type is None or not condition:
        return None
    try:
        matches = find_matches(
            conn, fhir_type.kinds, condition, known_types=list(types), patient=patient
        )
    except FhirError:  # a condition our search cannot run: the reference stays as sent
        return None
    if len(matches) != 1:
        return None
    kind, num = matches[0]
    return f"{kind.fhir_type}/{kind.fhir_id(num)}"
