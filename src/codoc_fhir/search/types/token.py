"""Token parameters: `code`, `system|code`, `|code`, `system|`; :not and :missing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, false, not_, or_, select, true

from codoc_fhir.fhir.references import key_number
from codoc_fhir.search.kind import SearchKind, SearchParam
from codoc_fhir.search.model import SearchFilter
from codoc_fhir.warehouse.schema import dwh_thesaurus_data

CODESYSTEM_PREFIX = "urn:codoc:fhir:codesystem:"


def split_token(text: str) -> tuple[str | None, str]:
    """(system, code): system None when the value has no `|`, '' for `|code`."""
    if "|" not in text:
        return None, text
    system, code = text.split("|", 1)
    return system, code


def clause(kind: SearchKind, param: SearchParam, search_filter: SearchFilter) -> Any:
    """The WHERE clause of a token filter on `kind`."""
    if param.options.get("id"):
        return id_clause(kind, search_filter)
    column = param.columns[0]
    if search_filter.missing is not None:
        return column.is_(None) if search_filter.missing else column.is_not(None)
    matches = or_(false(), *(_value(kind, param, v.text) for v in search_filter.values))
    if search_filter.modifier == "not":
        return or_(not_(matches), column.is_(None))
    return matches


def _value(kind: SearchKind, param: SearchParam, text: str) -> Any:
    column = param.columns[0]
    system, code = split_token(text)
    conditions = [_system(kind, param, system)]
    if code:
        to_db = param.options.get("to_db")
        stored = to_db(code) if to_db else code
        conditions.append(false() if stored is None else column == stored)
    matched = and_(*conditions)
    official = key_number(code) if param.options.get("official") and system is None else None
    if official is not None:
        return or_(matched, kind.key == official)
    return matched


def _system(kind: SearchKind, param: SearchParam, system: str | None) -> Any:
    if system is None:
        return true()
    system_column = param.options.get("system_column")
    if system_column is not None:
        return system_column.is_(None) if system == "" else system_column == system
    fixed = param.options.get("system")
    if callable(fixed):
        fixed = fixed(kind)
    if system == "":
        return true() if fixed is None else false()
    return true() if fixed == system else false()


def id_clause(kind: SearchKind, search_filter: SearchFilter) -> Any:
    """_id: FHIR ids of this kind (`12`, `movement-3`) -> its primary key."""
    if search_filter.missing is not None:
        return false() if search_filter.missing else true()
    keys = [kind.parse_fhir_id(value.text) for value in search_filter.values]
    wanted = [key for key in keys if key is not None]
    matches = kind.key.in_(wanted) if wanted else false()
    return not_(matches) if search_filter.modifier == "not" else matches


def concept_clause(
    kind: SearchKind, search_filter: SearchFilter, column: Any, thesaurus_code: str
) -> Any:
    """Concept codes of one thesaurus, for a column holding thesaurus_data_num:
    `column IN (SELECT thesaurus_data_num FROM dwh_thesaurus_data WHERE ...)`."""
    if search_filter.missing is not None:
        return column.is_(None) if search_filter.missing else column.is_not(None)
    codes: list[str] = []
    any_code = False
    for value in search_filter.values:
        system, code = split_token(value.text)
        if system is not None and system != CODESYSTEM_PREFIX + thesaurus_code:
            continue
        if code:
            codes.append(code)
        else:
            any_code = True
    concept = dwh_thesaurus_data
    if any_code:
        matches: Any = true()
    elif codes:
        matches = column.in_(
            select(concept.c.thesaurus_data_num).where(
                concept.c.thesaurus_code == thesaurus_code, concept.c.concept_code.in_(codes)
            )
        )
    else:
        matches = false()
    return not_(matches) if search_filter.modifier == "not" else matches
