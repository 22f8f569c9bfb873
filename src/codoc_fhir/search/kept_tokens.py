"""Token searches widened to the codes kept elements carry (CONTRACT section 9).

A resource keeps the codings its columns cannot hold (a LOINC coding beside the thesaurus
one, a second identifier): `fhir_token` indexes them per top-level element at write time.
A token parameter then matches a row by its column *or* by a kept code of the element the
parameter is about, so `Observation?code=http://loinc.org|2339-0` finds the lab results
sent with that coding.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, and_, not_, or_, select

from codoc_fhir.search.kind import SearchKind, SearchParam
from codoc_fhir.search.model import SearchFilter
from codoc_fhir.search.types.token import split_token
from codoc_fhir.warehouse.schema import fhir_token


def element_of(param: SearchParam) -> str:
    """The top-level element a token parameter searches: declared, or its name in camel
    case (`clinical-status` -> `clinicalStatus`)."""
    declared = param.options.get("element")
    if declared:
        return str(declared)
    head, *rest = param.name.split("-")
    return head + "".join(part.capitalize() for part in rest)


# Above this many rows, the kept matches stay a subquery rather than a list of keys.
MAX_LISTED_KEYS = 1000


class KeptCodes:
    """The rows whose kept elements carry a code, looked up once per search.

    Looked up before the search's own SQL is built, so that the search stays one indexed
    query: `key IN (1, 5, 9)` beside the column's condition, or nothing at all when no kept
    element carries the code (the usual case for data loaded by SQL). An OR with a
    subquery instead would make PostgreSQL give up the indexes of the column's condition.
    """

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.found: dict[tuple[str, str, str | None, str], Any] = {}

    def rows(self, kind: SearchKind, param: SearchParam, text: str) -> Any:
        """The WHERE clause of the rows of `kind` with the code `text` (system|code) kept in
        the element `param` searches (None when there are none)."""
        system, code = split_token(text)
        if not code:
            return None
        wanted = (kind.table.name, element_of(param), system, code)
        if wanted not in self.found:
            self.found[wanted] = self._lookup(kind, *wanted)
        return self.found[wanted]

    def _lookup(
        self, kind: SearchKind, table: str, element: str, system: str | None, code: str
    ) -> Any:
        tokens = fhir_token.c
        conditions = [tokens.table_name == table, tokens.element == element, tokens.code == code]
        if system == "":
            conditions.append(tokens.system.is_(None))
        elif system is not None:
            conditions.append(tokens.system == system)
        rows = select(tokens.row_num).where(*conditions)
        keys = list(self.conn.execute(rows.limit(MAX_LISTED_KEYS + 1)).scalars())
        if not keys:
            return None
        if len(keys) > MAX_LISTED_KEYS:
            return kind.key.in_(rows)
        return kind.key.in_(sorted(set(keys)))


def widened(
    kind: SearchKind,
    param: SearchParam,
    search_filter: SearchFilter,
    clause: Any,
    kept: KeptCodes,
) -> Any:
    """`clause` (the column test of a token filter) or the kept codes of the same element."""
    if param.options.get("id") or search_filter.missing is not None or not kind.keeps_elements:
        return clause
    matches = [kept.rows(kind, param, value.text) for value in search_filter.values]
    found = [match for match in matches if match is not None]
    if not found:
        return clause
    if search_filter.modifier == "not":
        return and_(clause, not_(or_(*found)))
    return or_(clause, *found)
