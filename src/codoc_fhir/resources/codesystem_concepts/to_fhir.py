"""Thesaurus concepts to FHIR: a concept as a CodeSystem concept[] element or as the JSON
of the concept sub-routes."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy.engine import Row

from codoc_fhir.resources.concepts import codesystem_url


def concept_element(row: Row) -> dict[str, Any]:
    """A CodeSystem.concept element; its `id` is the concept's number."""
    element = {"id": str(row.thesaurus_data_num), "code": row.concept_code}
    element["display"] = row.concept_str
    if row.description:
        element["definition"] = row.description
    if row.designation_json:
        element["designation"] = designations(row)
    return element


def concept_json(row: Row) -> dict[str, Any]:
    """A concept as the concept routes answer it: the element plus its system."""
    return {**concept_element(row), "system": codesystem_url(row.thesaurus_code)}


def designations(row: Any) -> list[dict[str, Any]]:
    return list(orjson.loads(row.designation_json)) if row.designation_json else []
