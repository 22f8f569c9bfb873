"""Thesaurus concepts from FHIR: a concept (or a concept[] entry of a CodeSystem) checked
and mapped to dwh_thesaurus_data columns, designations included."""

from __future__ import annotations

from typing import Any

import orjson

from codoc_fhir.fhir.errors import Invalid, Required
from codoc_fhir.fhir.validation import check_length
from codoc_fhir.resources.concepts import codesystem_url

CONCEPT_KEYS = {"resourceType", "id", "code", "display", "definition", "system", "designation"}
_LIMITS = {"code": 100, "display": 2000, "definition": 4000}


def _text(item: dict[str, Any], name: str, field: str, *, required: bool) -> str | None:
    value = item.get(name)
    if value is None or value == "":
        if required:
            raise Required(f"Field '{field}.{name}' is required", expression=[f"{field}.{name}"])
        return None
    if not isinstance(value, str) or value != value.strip():
        raise Invalid(
            f"{field}.{name} must be a string without surrounding spaces",
            expression=[f"{field}.{name}"],
        )
    return str(check_length(value, _LIMITS[name], f"{field}.{name}"))


def parse_concept(item: Any, field: str, *, code_required: bool = True) -> dict[str, Any]:
    """A concept as sent ({"code", "display", "definition"}) -> column values."""
    if not isinstance(item, dict):
        raise Invalid(f"{field} must be an object with code and display", expression=[field])
    if item.get("concept"):
        raise Invalid(
            f"{field}: nested concepts are not supported, send a flat list", expression=[field]
        )
    return {
        "concept_code": _text(item, "code", field, required=code_required),
        "concept_str": _text(item, "display", field, required=True),
        "description": _text(item, "definition", field, required=False),
        **parse_designations(item.get("designation"), f"{field}.designation"),
    }


def parse_designations(items: Any, field: str) -> dict[str, Any]:
    """designation[] (synonyms: `value`, optional `language` and `use`) -> the JSON kept
    and the values searched (one a line)."""
    if items is None or items == []:
        return {"designation_json": None, "designation_text": None}
    if not isinstance(items, list):
        raise Invalid(f"{field} must be a list", expression=[field])
    kept = []
    for position, item in enumerate(items):
        where = f"{field}[{position}]"
        value = item.get("value") if isinstance(item, dict) else None
        if not isinstance(value, str) or not value.strip():
            raise Required(f"Field '{where}.value' is required", expression=[f"{where}.value"])
        unknown = sorted(set(item) - {"language", "use", "value"})
        if unknown:
            raise Invalid(f"Unknown {where} element(s): {', '.join(unknown)}", expression=[where])
        if not isinstance(item.get("language", ""), str) or not isinstance(
            item.get("use", {}), dict
        ):
            raise Invalid(f"{where}: language is a code, use a Coding", expression=[where])
        kept.append(item)
    text = check_length("\n".join(item["value"] for item in kept), 4000, field)
    return {"designation_json": orjson.dumps(kept).decode(), "designation_text": text}


def check_concept_body(body: Any, thesaurus_code: str) -> None:
    """A concept sent to the concept routes: its own keys only, of this thesaurus."""
    if not isinstance(body, dict):
        raise Invalid("The request body must be a JSON object")
    unknown = sorted(set(body) - CONCEPT_KEYS)
    if unknown:
        raise Invalid(f"Unknown concept element(s): {', '.join(unknown)}", expression=unknown)
    if body.get("resourceType", "CodeSystemConcept") != "CodeSystemConcept":
        raise Invalid(
            f"resourceType must be CodeSystemConcept, got {body['resourceType']!r}",
            expression=["resourceType"],
        )
    if body.get("system") not in (None, codesystem_url(thesaurus_code)):
        raise Invalid(f"system must be {codesystem_url(thesaurus_code)}", expression=["system"])
