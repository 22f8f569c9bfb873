"""Terminology operations over the thesauri: $lookup, $validate-code, ValueSet/$expand.

A thesaurus is the CodeSystem `urn:codoc:fhir:codesystem:<code>`; the implicit ValueSet of
all its codes has the same url (FHIR's `<url>?vs` spelling is accepted too). Lookups go
through the unique index on (thesaurus_code, concept_code); an expansion filter is SQL on
the folded display, code and designations (accent- and case-insensitive, every word must
match), paged by `count` and `offset` in the database.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, and_, func, or_, select
from sqlalchemy.engine import Row

from codoc_fhir.fhir.errors import Invalid, NotFound
from codoc_fhir.resources.codesystem_concepts import designations
from codoc_fhir.resources.concepts import CODESYSTEM_URL_PREFIX, codesystem_url
from codoc_fhir.search.types.string import fold, fold_text
from codoc_fhir.warehouse.schema import dwh_thesaurus, dwh_thesaurus_data

concept = dwh_thesaurus_data.c
DEFAULT_EXPAND_COUNT = 100
MAX_EXPAND_COUNT = 1000


def thesaurus_of(url: str | None, name: str = "system") -> str:
    """The thesaurus code a CodeSystem url names (400 for another kind of url)."""
    if not url:
        raise Invalid(f"The {name} parameter is required", expression=[name])
    code = url.removesuffix("?vs")
    if not code.startswith(CODESYSTEM_URL_PREFIX) or code == CODESYSTEM_URL_PREFIX:
        raise Invalid(
            f"{name} must be a thesaurus url {CODESYSTEM_URL_PREFIX}<code>, got {url!r}",
            expression=[name],
        )
    return code[len(CODESYSTEM_URL_PREFIX) :]


def _thesaurus(conn: Connection, code: str) -> Row | None:
    query = select(dwh_thesaurus).where(dwh_thesaurus.c.thesaurus_code == code)
    return conn.execute(query).first()


def _concept(conn: Connection, thesaurus_code: str, code: str) -> Row | None:
    query = select(dwh_thesaurus_data).where(
        concept.thesaurus_code == thesaurus_code, concept.concept_code == code
    )
    return conn.execute(query).first()


def _designation_parts(item: dict[str, Any]) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    if item.get("language"):
        parts.append({"name": "language", "valueCode": item["language"]})
    if item.get("use"):
        parts.append({"name": "use", "valueCoding": item["use"]})
    parts.append({"name": "value", "valueString": item["value"]})
    return {"name": "designation", "part": parts}


def lookup(conn: Connection, system: str | None, code: str | None) -> dict[str, Any]:
    """Parameters: name (the thesaurus), display, definition, designation; 404 if unknown."""
    thesaurus_code = thesaurus_of(system)
    if not code:
        raise Invalid("The code parameter is required", expression=["code"])
    thesaurus = _thesaurus(conn, thesaurus_code)
    row = _concept(conn, thesaurus_code, code) if thesaurus is not None else None
    if thesaurus is None or row is None:
        raise NotFound(f"Code {code!r} is not in CodeSystem {system}")
    parameters: list[dict[str, Any]] = [
        {"name": "name", "valueString": thesaurus.name or thesaurus.label},
        {"name": "display", "valueString": row.concept_str},
    ]
    if row.description:
        parameters.append({"name": "definition", "valueString": row.description})
    parameters += [_designation_parts(item) for item in designations(row)]
    return {"resourceType": "Parameters", "parameter": parameters}


def validate_code(
    conn: Connection, url: str | None, code: str | None, display: str | None = None
) -> dict[str, Any]:
    """Parameters: result, and the display (valid) or a message (not valid)."""
    thesaurus_code = thesaurus_of(url, "url")
    if not code:
        raise Invalid("The code parameter is required", expression=["code"])
    row = _concept(conn, thesaurus_code, code)
    if row is None:
        return _verdict(False, f"Code {code!r} is not in CodeSystem {url}")
    if display is not None and display != row.concept_str:
        known = [item["value"] for item in designations(row)]
        if display not in known:
            return _verdict(
                False, f"Display {display!r} is not the display of {code!r}: {row.concept_str!r}"
            )
    return {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "result", "valueBoolean": True},
            {"name": "display", "valueString": row.concept_str},
        ],
    }


def _verdict(result: bool, message: str) -> dict[str, Any]:
    return {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "result", "valueBoolean": result},
            {"name": "message", "valueString": message},
        ],
    }


def _paging(text: str | None, name: str, default: int, limit: int) -> int:
    if text is None or text == "":
        return default
    if not (text.isascii() and text.isdigit()):
        raise Invalid(f"{name} must be a non-negative integer, got {text!r}", expression=[name])
    return min(int(text), limit)


def _filter_clause(words: list[str]) -> Any:
    """Every word in the display, the code or a designation (folded, anywhere)."""
    clauses = []
    for word in words:
        pattern = (
            "%"
            + fold_text(word).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            + "%"
        )
        columns = (concept.concept_str, concept.concept_code, concept.designation_text)
        clauses.append(or_(*(fold(column).like(pattern, escape="\\") for column in columns)))
    return and_(*clauses)


def expand(
    conn: Connection,
    url: str | None,
    text_filter: str | None,
    count: str | None,
    offset: str | None,
    expanded_at: str,
) -> dict[str, Any]:
    """The ValueSet of a thesaurus's codes matching `filter`, `count` of them from `offset`."""
    thesaurus_code = thesaurus_of(url, "url")
    if _thesaurus(conn, thesaurus_code) is None:
        raise NotFound(f"No ValueSet {url}: the thesaurus {thesaurus_code} does not exist")
    size = _paging(count, "count", DEFAULT_EXPAND_COUNT, MAX_EXPAND_COUNT)
    start = _paging(offset, "offset", 0, 2**31)
    words = (text_filter or "").split()
    where = [concept.thesaurus_code == thesaurus_code]
    if words:
        where.append(_filter_clause(words))
    total = conn.execute(select(func.count()).select_from(dwh_thesaurus_data).where(*where))
    rows = conn.execute(
        select(dwh_thesaurus_data)
        .where(*where)
        .order_by(concept.thesaurus_data_num)  # creation order, as in CodeSystem.concept
        .limit(size)
        .offset(start)
    ).all()
    parameters: list[dict[str, Any]] = [
        {"name": "offset", "valueInteger": start},
        {"name": "count", "valueInteger": size},
    ]
    if text_filter:
        parameters.insert(0, {"name": "filter", "valueString": text_filter})
    return {
        "resourceType": "ValueSet",
        "url": codesystem_url(thesaurus_code),
        "status": "active",
        "expansion": {
            "timestamp": expanded_at,
            "total": total.scalar_one(),
            "offset": start,
            "parameter": parameters,
            "contains": [_contains(row) for row in rows],
        },
    }


def _contains(row: Row) -> dict[str, Any]:
    item: dict[str, Any] = {
        "system": codesystem_url(row.thesaurus_code),
        "code": row.concept_code,
        "display": row.concept_str,
    }
    if row.designation_json:
        item["designation"] = designations(row)
    return item
