"""FHIR references: accepted as `Patient/1`, `patient/1` or an absolute URL ending so."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from codoc_fhir.fhir.errors import Invalid, Required

_REFERENCE = re.compile(r"(?:^|/)([A-Za-z]+)/([A-Za-z0-9\-\.]{1,64})/?$")


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
