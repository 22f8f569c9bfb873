"""Conditional create: `If-None-Exist` (or the query string of a POST on a type path, or a
Bundle entry's `request.ifNoneExist`) makes loading the same resource twice harmless."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl

from sqlalchemy import Connection

from codoc_fhir.fhir.errors import PreconditionFailed
from codoc_fhir.resources.base import Resource
from codoc_fhir.search.matches import find_matches
from codoc_fhir.warehouse.db import lock_name

# Query parameters of a POST that shape the answer, not the condition.
ANSWER_PARAMS = ("_format", "_pretty")


def condition_pairs(query: str | None) -> list[tuple[str, str]]:
    """The search criteria of a condition (`identifier=HIS|IPP1&...`), answer options left out."""
    text = (query or "").strip().lstrip("?")
    pairs = parse_qsl(text, keep_blank_values=True)
    return [(key, value) for key, value in pairs if key not in ANSWER_PARAMS]


def condition_lock_name(kinds: Sequence[Resource], condition: list[tuple[str, str]]) -> str:
    """The same name for the same condition on the same type, whatever the parameter order."""
    criteria = "&".join(f"{key}={value}" for key, value in sorted(condition))
    return f"conditional-create:{kinds[0].fhir_type}?{criteria}"


def create_unless_exists(
    conn: Connection,
    kinds: Sequence[Resource],
    kind: Resource,
    body: Any,
    condition: list[tuple[str, str]],
    *,
    known_types: Sequence[str] = (),
    patient: int | None = None,
) -> tuple[dict[str, Any], int]:
    """(resource, HTTP status): 201 when created; 200 and the stored resource when exactly
    one row of `kinds` matches the condition; 412 `duplicate` when several do.

    Without a condition it is a plain create. Run it in the write transaction: concurrent
    creates with the same condition queue on a lock named after it, so the first creates
    and the others find what it created (exactly one resource, whatever the type).
    """
    if condition:
        lock_name(conn, condition_lock_name(kinds, condition))
        matches = find_matches(conn, kinds, condition, known_types=known_types, patient=patient)
        if len(matches) > 1:
            raise PreconditionFailed(
                "The condition matches several resources: nothing was created",
                code="duplicate",
            )
        if matches:
            found, num = matches[0]
            return found.read(conn, num), 200
    return kind.create(conn, body), 201
