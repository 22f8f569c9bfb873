"""FHIR references: accepted as `Patient/1`, `patient/1` or an absolute URL ending so."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from codoc_fhir.fhir.errors import Invalid, ReferenceNotFound, Required

_REFERENCE = re.compile(r"(?:^|/)([A-Za-z]+)/([A-Za-z0-9\-\.]{1,64})/?$")
# References of an imported resource that name nothing the import run created (bulk/).
_OUTSIDE_RUN: ContextVar[frozenset[str]] = ContextVar("outside_run", default=frozenset())


class ReferenceOutsideRun(ReferenceNotFound):
    """A mapped reference of an imported resource names a resource of the source system
    that the import never created: it must not be read as one of our ids."""


@contextmanager
def outside_run(texts: Iterable[str]) -> Iterator[None]:
    """While inside, `parse_reference` refuses these reference strings (bulk import: the
    source's `Patient/12` is not our `Patient/12`). References the mapping only keeps
    (`identifier.assigner`) are not parsed, so they are stored as sent."""
    token = _OUTSIDE_RUN.set(frozenset(texts))
    try:
        yield
    finally:
        _OUTSIDE_RUN.reset(token)


@dataclass(frozen=True)
class Reference:
    """A parsed reference: the canonical FHIR type name and the id."""

    type: str
    id: str

    def __str__(self) -> str:
        return f"{self.type}/{self.id}"


def parse_reference(value: Any, field: str, allowed_types: tuple[str, ...]) -> Reference:
    """Parse a Reference element (`{"reference": ...}`) whose type must be in `allowed_types`."""
    if value is None:
        raise Required(f"Field '{field}' is required", expression=[field])
    if not isinstance(value, dict):
        raise Invalid(f"{field} must be a Reference object", expression=[field])
    text = value.get("reference")
    if not text:
        raise Required(f"Field '{field}.reference' is required", expression=[field])
    if isinstance(text, str) and text in _OUTSIDE_RUN.get():
        raise ReferenceOutsideRun(
            f"{field}: {text} names a resource that this import run (or an earlier one) "
            "did not create",
            expression=[field],
        )
    match = _REFERENCE.search(str(text)) if isinstance(text, str) else None
    if not match:
        raise Invalid(f"Invalid reference {text!r} in {field}", expression=[field])
    type_name, ident = match.groups()
    for allowed in allowed_types:
        if allowed.lower() == type_name.lower():
            return Reference(allowed, ident)
    expected = " or ".join(allowed_types)
    raise Invalid(
        f"{field} must reference {expected}, got {type_name}", expression=[f"{field}.reference"]
    )


def reference_target(value: Any) -> tuple[str, str] | None:
    """(type as spelled, id) of a Reference element naming a resource; None when it names
    none (a display only, a contained `#id`, an unresolved `urn:uuid:`)."""
    text = value.get("reference") if isinstance(value, dict) else None
    match = _REFERENCE.search(text) if isinstance(text, str) else None
    return (match.group(1), match.group(2)) if match else None


def key_number(text: str) -> int | None:
    """The warehouse key a string of ASCII digits names; None when it is not one.

    `str.isdigit` alone accepts digits `int` refuses (`²`), and a key must fit a BIGINT.
    """
    return int(text) if text.isascii() and text.isdigit() and len(text) < 19 else None


def reference_dict(type_name: str, ident: str | int, display: str | None = None) -> dict:
    """A Reference element as answered: canonical case, `display` when known."""
    answer: dict[str, Any] = {"reference": f"{type_name}/{ident}"}
    if display:
        answer["display"] = display
    return answer


def references(value: Any) -> Iterator[str]:
    """Every `reference` string inside a resource."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "reference" and isinstance(item, str):
                yield item
            else:
                yield from references(item)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)
