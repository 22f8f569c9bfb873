"""String parameters: starts-with by default, :exact, :contains; case and accent
insensitive on both backends: the column goes through an SQL fold (PostgreSQL: lower() and
translate() of the accented letters; SQLite: a registered Python function) and is compared
with the same fold of the value, done in Python."""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy import Engine, String, and_, event, false, or_
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from codoc_fhir.search.kind import SearchKind, SearchParam
from codoc_fhir.search.model import SearchFilter

_GROUPS = {
    "a": "àáâãäåāăą",
    "c": "çćĉċč",
    "d": "ďđ",
    "e": "èéêëēĕėęě",
    "g": "ĝğġģ",
    "h": "ĥħ",
    "i": "ìíîïĩīĭįı",
    "j": "ĵ",
    "k": "ķ",
    "l": "ĺļľŀł",
    "n": "ñńņňŉ",
    "o": "òóôõöøōŏő",
    "r": "ŕŗř",
    "s": "śŝşš",
    "t": "ţťŧ",
    "u": "ùúûüũūŭůűų",
    "w": "ŵ",
    "y": "ýÿŷ",
    "z": "źżž",
}
ACCENTS: dict[str, str] = {}
for _plain, _marked in _GROUPS.items():
    for _char in _marked:
        ACCENTS[_char] = _plain
        if _char.upper() != _char and len(_char.upper()) == 1:
            ACCENTS[_char.upper()] = _plain
_FROM = "".join(ACCENTS)
_TO = "".join(ACCENTS.values())
_TABLE = str.maketrans(ACCENTS)


def fold_text(text: str) -> str:
    """The Python side of the fold: lower case, accents removed (same map as the SQL)."""
    return text.lower().translate(_TABLE)


class fold(FunctionElement[str]):
    """SQL: lower case and accents removed, like `fold_text`."""

    type = String()
    inherit_cache = True
    name = "codoc_fold"


@compiles(fold, "postgresql")
def _fold_postgresql(element: fold, compiler: Any, **kw: Any) -> str:
    inner = compiler.process(element.clauses, **kw)
    return f"translate(lower({inner}), '{_FROM}', '{_TO}')"


@compiles(fold)
def _fold_generic(element: fold, compiler: Any, **kw: Any) -> str:
    """Elsewhere (SQLite): the `codoc_fold` function every connection gets (below)."""
    return f"codoc_fold({compiler.process(element.clauses, **kw)})"


def _sql_fold(value: Any) -> Any:
    return fold_text(value) if isinstance(value, str) else value


@event.listens_for(Engine, "connect")
def _register_fold(dbapi_connection: Any, _record: Any) -> None:
    """Give every SQLite connection `codoc_fold`, the very function of `fold_text`."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.create_function("codoc_fold", 1, _sql_fold, deterministic=True)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def clause(kind: SearchKind, param: SearchParam, search_filter: SearchFilter) -> Any:
    """The WHERE clause of a string filter on `kind` (any of the columns may match)."""
    columns = param.columns
    if search_filter.missing is not None:
        if search_filter.missing:
            return and_(*(column.is_(None) for column in columns))
        return or_(*(column.is_not(None) for column in columns))
    conditions = []
    for value in search_filter.values:
        for column in columns:
            conditions.append(_match(column, value.text, search_filter.modifier))
    return or_(false(), *conditions)


def _match(column: Any, text: str, modifier: str | None) -> Any:
    if modifier == "exact":
        return column == text
    pattern = _escape(fold_text(text))
    pattern = f"%{pattern}%" if modifier == "contains" else f"{pattern}%"
    return fold(column).like(pattern, escape="\\")
