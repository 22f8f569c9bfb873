"""Token searches widened to the codes kept elements carry (CONTRACT section 9).

A resource keeps the codings its columns cannot hold (a LOINC coding beside the thesaurus
one, a second identifier): `fhir_token` indexes them per top-level element at write time.
A token parameter then matches a row by its column *or* by a kept code of the element the
parameter is about, so `Observation?code=http://loinc.org|2339-0` finds the lab results
sent with that coding.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, false, not_, or_, select, true

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


def widened(kind: SearchKind, param: SearchParam, search_filter: SearchFilter, clause: Any) -> Any:
    """`clause` (the column test of a token filter) or the kept codes of the same element."""
    if param.options.get("id") or search_filter.missing is not None or not kind.keeps_elements:
        return clause
    kept = or_(false(), *(_kept_code(kind, param, value.text) for value in search_filter.values))
    if search_filter.modifier == "not":
        return and_(clause, not_(kept))
    return or_(clause, kept)


def _kept_code(kind: SearchKind, param: SearchParam, text: str) -> Any:
    system, code = split_token(text)
    if not code:
        return false()
    tokens = fhir_token.c
    if system is None:
        system_test: Any = true()
    elif system == "":
        system_test = tokens.system.is_(None)
    else:
        system_test = tokens.system == system
    rows = select(tokens.row_num).where(
        tokens.table_name == kind.table.name,
        tokens.element == element_of(param),
        tokens.code == code,
        system_test,
    )
    return kind.key.in_(rows)
