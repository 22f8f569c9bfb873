"""The Organization search parameters: identifier and name on the level columns, type and
partof on the tree structure."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    false,
    or_,
    true,
)

from codoc_fhir.fhir.references import key_number
from codoc_fhir.resources.base import SearchParam
from codoc_fhir.resources.organization.levels import PARENT_COLUMNS, TYPE_CODES
from codoc_fhir.search import declare
from codoc_fhir.search.types import string as string_search
from codoc_fhir.search.types import token as token_search
from codoc_fhir.search.types.reference import parse as parse_reference_value


def _code_clause(kind: Any, search_filter: Any) -> Any:
    column = kind.table.c[kind.level.code_column]
    return token_search.clause(kind, declare.token("identifier", column), search_filter)


def _name_clause(kind: Any, search_filter: Any) -> Any:
    column = kind.table.c[kind.level.name_column]
    return string_search.clause(kind, declare.string("name", column), search_filter)


def _type_clause(kind: Any, search_filter: Any) -> Any:
    """type=department (or dept, or system|code): the whole kind matches or not."""
    codes = {token_search.split_token(value.text)[1] for value in search_filter.values}
    matches = any(TYPE_CODES.get(code) == kind.level.name for code in codes)
    if search_filter.modifier == "not":
        matches = not matches
    return true() if matches else false()


def _partof_clause(kind: Any, search_filter: Any) -> Any:
    """partof=Organization/site-1 on the kind's parent columns."""
    columns = PARENT_COLUMNS[kind.level.name]
    if search_filter.missing is not None:
        present = [kind.table.c[column].is_not(None) for column in columns.values()]
        return ~or_(false(), *present) if search_filter.missing else or_(false(), *present)
    conditions = []
    for value in search_filter.values:
        _, ident = parse_reference_value(value.text, "Organization")
        parent, _, number = ident.partition("-")
        num = key_number(number)
        if parent in columns and num is not None:
            conditions.append(kind.table.c[columns[parent]] == num)
    return or_(false(), *conditions)


ORGANIZATION_SEARCH: dict[str, SearchParam] = {
    "identifier": declare.custom("identifier", "token", _code_clause),
    "name": declare.custom("name", "string", _name_clause),
    "type": declare.custom("type", "token", _type_clause),
    "partof": declare.custom("partof", "reference", _partof_clause),
}
