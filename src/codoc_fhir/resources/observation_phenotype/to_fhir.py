"""Observation phenotype to FHIR: the components answered in their canonical form, in a
fixed order, and whether the found text is answered as the valueString."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy.engine import RowMapping

from codoc_fhir.resources.observation_phenotype.components import COMPONENT_SYSTEM, COMPONENTS

COMPONENT_COLUMNS = (
    "phenotype",
    "semantic_type",
    "tfidf_code_document",
    "count_concept",
    "count_concept_str_found",
    "certainty",
    "context",
    "hypothesis",
)


def answered_components(row: Any) -> list[dict[str, Any]]:
    """component[] in the canonical form, in a fixed order, for the columns set."""
    answer = []
    for code, kind in COMPONENTS.items():
        value = kind.answer(row)
        if value is not None:
            answer.append(
                {"code": {"coding": [{"system": COMPONENT_SYSTEM, "code": code}]}, **value}
            )
    return answer


def sent_another_value(row: RowMapping) -> bool:
    """Whether the phenotype was sent with a value[x] other than valueString (then kept
    with the row): its found text is not answered as a valueString beside it."""
    kept = row.get("fhir_kept")
    if not kept:
        return False
    elements = orjson.loads(kept).get("elements") or {}
    return any(name.startswith("value") and name != "valueString" for name in elements)
