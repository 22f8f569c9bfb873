"""Identifiers: the server's own (official) first, then the usual ones sent by clients."""

from __future__ import annotations

from typing import Any

from codoc_fhir.fhir.errors import Invalid


def official(ident: str | int) -> dict[str, str]:
    return {"use": "official", "value": str(ident)}


def usual(value: str, system: str | None = None) -> dict[str, str]:
    answer = {"use": "usual"}
    if system:
        answer["system"] = system
    answer["value"] = value
    return answer


def held(value: str, system: str | None = None) -> dict[str, str]:
    """A client's identifier as a column holds it (system, value), without `use`: the
    `use` it was sent with comes back from the kept elements (fhir/kept.py), so an
    identifier sent without one is answered without one."""
    answer = {"system": system} if system else {}
    answer["value"] = value
    return answer


def official_and_usual(ident: str | int, source_id: str | None) -> list[dict[str, str]]:
    """identifier[] of a resource with one source id column: official, then the client's
    identifier the column holds, if any (its `use` and system come from the kept elements)."""
    found = [official(ident)]
    if source_id:
        found.append(held(source_id))
    return found


def usual_identifiers(body: dict[str, Any]) -> list[tuple[str | None, str]]:
    """(system, value) of each incoming usual identifier; `use` absent means usual.

    Official identifiers are the server's own and are ignored on input; identifiers of
    another use (secondary, old...) or without a value have no column and are kept as sent
    with the resource's other elements (CONTRACT section 9).
    """
    found: list[tuple[str | None, str]] = []
    for item in body.get("identifier") or []:
        if not isinstance(item, dict):
            raise Invalid("identifier entries must be objects", expression=["identifier"])
        value = item.get("value")
        if item.get("use", "usual") != "usual" or not isinstance(value, str) or not value.strip():
            continue
        found.append((item.get("system"), value))
    return found


def first_usual_pair(body: dict[str, Any]) -> tuple[str | None, str] | None:
    """(system, value) of the first usual identifier, the one a single column holds (the
    others are kept with the row, CONTRACT 9), or None."""
    found = usual_identifiers(body)
    return found[0] if found else None


def single_usual_identifier(body: dict[str, Any]) -> str | None:
    """The usual identifier a resource keeps in its single column: the first one (the
    others are kept with the resource's other elements), or None."""
    found = usual_identifiers(body)
    return found[0][1] if found else None


def first_usual_identifier(body: dict[str, Any]) -> str | None:
    """The usual identifier a single source-id column holds: the first one sent (the
    others are kept with the row and answered, CONTRACT section 9)."""
    found = usual_identifiers(body)
    return found[0][1] if found else None
