"""Which rows a search names, without rendering them: conditional create (If-None-Exist)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, select

from codoc_fhir.fhir.errors import Invalid
from codoc_fhir.resources.base import Resource
from codoc_fhir.search.execute import SearchScope, match_branches, union_all_any
from codoc_fhir.search.model import parse_search

# Result parameters make no sense in a condition: only filters (and _id, _lastUpdated).
_FILTERS_ONLY = ("_id", "_lastUpdated")


def find_matches(
    conn: Connection,
    kinds: Sequence[Resource],
    query_pairs: Iterable[tuple[str, str]],
    *,
    known_types: Iterable[str] = (),
    patient: int | None = None,
    limit: int = 2,
) -> list[tuple[Resource, int]]:
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
    branches = match_branches(SearchScope(kinds, kinds, patient=patient), request)
    if not branches:
        return []
    sub: Any = (branches[0] if len(branches) == 1 else union_all_any(*branches)).subquery()
    rows = conn.execute(select(sub.c.k, sub.c.p).order_by(sub.c.k, sub.c.p).limit(limit))
    return [(kinds[index], key) for index, key in rows]
