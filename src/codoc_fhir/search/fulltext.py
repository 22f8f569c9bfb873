"""`DocumentReference?_content=`: full-text search of the documents' plain text with each
database's own engine (CONTRACT section 11).

PostgreSQL: `dwh_text_fts_<language> @@ websearch_to_tsquery('codoc_<language>', ...)`, a
stored generated tsvector column per language with its GIN index; the `codoc_french` /
`codoc_english` text search configurations (migration 0006) run `unaccent` before the
stemmer, so case and accents do not matter. The column is not in warehouse/schema.py
(engine-specific); only this SQL names it. SQLite: the FTS5 table `dwh_text_fts`
(tokenizer unicode61, diacritics removed) kept in step with `dwh_text` by triggers; the
web-search query is translated to FTS5's syntax here (no stemming: FTS5 has none for
French).

Web-search syntax on both: words are ANDed, `"a phrase"`, `a OR b`, `-word` excludes.
A query must have at least one word to find (a 400 otherwise), so that both backends
answer the same documents.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Boolean, bindparam, exists, false, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement

from codoc_fhir.fhir.errors import Invalid
from codoc_fhir.search.model import SearchFilter
from codoc_fhir.warehouse.schema import dwh_document, dwh_text

TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')
WORD = re.compile(r"\w")
CONFIGURATIONS = {"french": "codoc_french", "english": "codoc_english"}
FTS_TABLE = "dwh_text_fts"


@dataclass(frozen=True)
class WebQuery:
    """A parsed web-search query: groups of alternatives (ANDed) and excluded terms."""

    groups: tuple[tuple[str, ...], ...]
    excluded: tuple[str, ...]


def parse(text: str) -> WebQuery:
    """Parse web-search syntax; 400 when nothing is left to find."""
    groups: list[list[str]] = []
    excluded: list[str] = []
    join_next = False
    for match in TOKEN.finditer(text):
        sign, phrase, word = match.group(1), match.group(2), match.group(3)
        if word == "OR":
            join_next = bool(groups)
            continue
        negative = sign == "-" or (word is not None and word.startswith("-"))
        term = phrase if phrase is not None else (word or "").lstrip("-")
        if not WORD.search(term):
            continue
        if negative:
            excluded.append(term)
        elif join_next:
            groups[-1].append(term)
        else:
            groups.append([term])
        join_next = False
    if not groups:
        raise Invalid(
            "_content needs at least one word to find (a query of only -words finds nothing)",
            expression=["_content"],
        )
    return WebQuery(tuple(tuple(group) for group in groups), tuple(excluded))


def fts5_query(query: WebQuery) -> str:
    """The same query in FTS5's syntax, every term a quoted phrase."""

    def quoted(term: str) -> str:
        return '"' + term.replace('"', '""') + '"'

    positive = " AND ".join(
        "(" + " OR ".join(quoted(term) for term in group) + ")" for group in query.groups
    )
    return "".join([f"({positive})", *(f" NOT {quoted(term)}" for term in query.excluded)])


class text_matches(ColumnElement[bool]):
    """`dwh_text` rows whose text matches a web-search query (compiled per dialect)."""

    type = Boolean()
    inherit_cache = False

    def __init__(self, text: str, language: str) -> None:
        self.text = text
        self.language = language
        self.query = parse(text)


@compiles(text_matches, "postgresql")
def _postgresql(element: text_matches, compiler: Any, **kw: Any) -> str:
    config = CONFIGURATIONS[element.language]
    query = compiler.process(bindparam(None, element.text, unique=True), **kw)
    table = compiler.process(dwh_text.c.text, **kw).rsplit(".", 1)[0]
    column = f"{table}.{FTS_TABLE}_{element.language}"
    return f"{column} @@ websearch_to_tsquery('{config}'::regconfig, {query})"


@compiles(text_matches, "sqlite")
def _sqlite(element: text_matches, compiler: Any, **kw: Any) -> str:
    query = compiler.process(bindparam(None, fts5_query(element.query), unique=True), **kw)
    column = compiler.process(dwh_text.c.document_num, **kw)
    return f"{column} IN (SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH {query})"


def content_clause(kind: Any, search_filter: SearchFilter) -> Any:
    """The `_content` filter: documents whose text matches any of the values."""
    has_text = exists().where(dwh_text.c.document_num == dwh_document.c.document_num)
    if search_filter.missing is not None:
        return ~has_text if search_filter.missing else has_text
    language = kind.settings.text_language
    matches = [text_matches(value.text, language) for value in search_filter.values]
    if not matches:
        return false()
    found = select(dwh_text.c.document_num).where(or_(*matches) if len(matches) > 1 else matches[0])
    clause = dwh_document.c.document_num.in_(found)
    return ~clause if search_filter.modifier == "not" else clause
