"""Conditional writes.

Conditional create: `If-None-Exist` (or the query string of a POST on a type path, or a
Bundle entry's `request.ifNoneExist`) makes loading the same resource twice harmless.
Conditional update, patch and delete (`PUT|PATCH|DELETE Type?<search>`, also as Bundle
entries) act on the one resource the search names, found by the search layer
(search/matches.py) in the write transaction, with the caller's patient restriction.
Conditional references in Bundle entries (`"reference": "Practitioner?identifier=..."`, as
Synthea writes them) become `Type/id` when the search names exactly one resource.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qsl

from sqlalchemy import Connection

from codoc_fhir.fhir.errors import NotFound, PreconditionFailed
from codoc_fhir.interactions.caller import Caller
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


def _only_match(
    conn: Connection,
    kinds: Sequence[Resource],
    condition: list[tuple[str, str]],
    caller: Caller,
    known_types: Sequence[str],
    what: str,
) -> tuple[Resource, int] | None:
    """The one row of `kinds` the condition names, None for none; 412 for several."""
    patient = caller.patient_num
    matches = find_matches(conn, kinds, condition, known_types=known_types, patient=patient)
    if len(matches) > 1:
        raise PreconditionFailed(
            f"The condition matches several resources: nothing was {what}", code="duplicate"
        )
    return matches[0] if matches else None


def conditional_update(
    conn: Connection,
    caller: Caller,
    kinds: Sequence[Resource],
    pick_kind: Callable[[Any], Resource],
    body: Any,
    condition: list[tuple[str, str]],
    *,
    known_types: Sequence[str],
    if_match: str | None = None,
) -> tuple[dict[str, Any], int]:
    """`PUT Type?<search>`: no match creates (201), one match is updated (200), several 412.

    A body `id` must be the matched resource's (as for PUT Type/id); with no match it is
    ignored like any id sent on a create (ids are assigned by the server).
    """
    found = _only_match(conn, kinds, condition, caller, known_types, "updated")
    if found is None:
        kind = pick_kind(body)
        resource = kind.create(conn, body)
        caller.check_created(conn, kind, resource)
        return resource, 201
    kind, num = found
    caller.check_owner(conn, kind, num, write=True)
    resource = kind.update(conn, num, body, if_match)
    caller.check_owner(conn, kind, num, write=True, created=True)
    return resource, 200


def conditional_patch(
    conn: Connection,
    caller: Caller,
    kinds: Sequence[Resource],
    changes: Any,
    condition: list[tuple[str, str]],
    *,
    known_types: Sequence[str],
    if_match: str | None = None,
    json_patch: bool = False,
) -> dict[str, Any]:
    """`PATCH Type?<search>`: the one matching resource is patched; none 404, several 412."""
    found = _only_match(conn, kinds, condition, caller, known_types, "patched")
    if found is None:
        raise NotFound("No resource matches the condition: nothing was patched")
    kind, num = found
    caller.check_owner(conn, kind, num, write=True)
    resource = kind.patch(conn, num, changes, if_match, json_patch=json_patch)
    caller.check_owner(conn, kind, num, write=True, created=True)
    return resource


def conditional_delete(
    conn: Connection,
    caller: Caller,
    kinds: Sequence[Resource],
    condition: list[tuple[str, str]],
    *,
    known_types: Sequence[str],
    if_match: str | None = None,
) -> bool:
    """`DELETE Type?<search>`: deletes the one matching resource (True); no match deletes
    nothing (False, still a success as FHIR says); several matches 412."""
    found = _only_match(conn, kinds, condition, caller, known_types, "deleted")
    if found is None:
        return False
    kind, num = found
    caller.check_owner(conn, kind, num, write=True)
    kind.delete(conn, num, if_match)
    return True
