"""The phenotype components: the NLP details (phenotype flag, semantic type, tf-idf, counts,
negation, hypothesis, family context), each with the dwh_enrsem columns it fills from a sent
component and the value it is answered with (coding in COMPONENT_SYSTEM)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import RowMapping

from codoc_fhir.fhir.errors import Invalid
from codoc_fhir.fhir.validation import text_value

COMPONENT_SYSTEM = "urn:codoc:fhir:phenotype-component"
OBSERVATION_STATUS = (
    "registered",
    "preliminary",
    "final",
    "amended",
    "corrected",
    "cancelled",
    "entered-in-error",
    "unknown",
)
MAX_INTEGER = 2**31 - 1
AFFIRMED, NEGATED = 1, -1
PATIENT_TEXT, FAMILY_TEXT = "patient_text", "family_text"


# --- component values --------------------------------------------------------------------


def _wrong_type(field: str, name: str, expected: str) -> Invalid:
    return Invalid(f"Component {name} takes {expected}", expression=[field])


def _integer(value: Any, field: str, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_INTEGER:
        raise _wrong_type(field, name, "a non-negative valueInteger")
    return value


def _boolean(sent: dict[str, Any], field: str, name: str) -> bool:
    value = sent.get("valueBoolean")
    if not isinstance(value, bool):
        raise _wrong_type(field, name, "valueBoolean")
    return value


def _phenotype_flag(sent: dict[str, Any], field: str, found: str) -> bool:
    """valueInteger 0/1, valueBoolean, or (as the semantic-enrichment guide sends it) a
    valueString repeating the text found, which marks the concept as a phenotype."""
    if "valueBoolean" in sent:
        return _boolean(sent, field, "phenotype")
    if "valueString" in sent:
        if sent["valueString"] != found:
            raise Invalid(
                "Component phenotype as valueString must repeat the Observation valueString "
                "(or send valueInteger 0/1)",
                expression=[field],
            )
        return True
    value = sent.get("valueInteger")
    if isinstance(value, bool) or value not in (0, 1):
        raise _wrong_type(field, "phenotype", "valueInteger 0 or 1 (or valueBoolean)")
    return bool(value)


def _tfidf(sent: dict[str, Any], field: str) -> float:
    value = (sent.get("valueQuantity") or {}).get("value") if "valueQuantity" in sent else None
    if "valueDecimal" in sent:
        value = sent["valueDecimal"]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _wrong_type(field, "tfidf_code_document", "valueQuantity.value or valueDecimal")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise Invalid("Component tfidf_code_document is not a storable number", expression=[field])
    return number


def _semantic_type(sent: dict[str, Any], field: str) -> str:
    if not isinstance(sent.get("valueString"), str):
        raise _wrong_type(field, "semantic_type", "valueString")
    return text_value(sent["valueString"], field, 100)


@dataclass(frozen=True)
class ComponentKind:
    """One component code: the columns it fills and how its value is answered."""

    code: str
    read: Callable[[dict[str, Any], str, str], dict[str, Any]]  # (component, field, found)
    answer: Callable[[RowMapping], dict[str, Any] | None]


def _column(row: RowMapping, name: str, wrap: Callable[[Any], dict[str, Any]]) -> Any:
    return None if row[name] is None else wrap(row[name])


COMPONENTS: dict[str, ComponentKind] = {
    kind.code: kind
    for kind in (
        ComponentKind(
            "phenotype",
            lambda sent, field, found: {"phenotype": _phenotype_flag(sent, field, found)},
            lambda row: _column(row, "phenotype", lambda value: {"valueInteger": int(value)}),
        ),
        ComponentKind(
            "semantic_type",
            lambda sent, field, found: {"semantic_type": _semantic_type(sent, field)},
            lambda row: _column(row, "semantic_type", lambda value: {"valueString": value}),
        ),
        ComponentKind(
            "tfidf_code_document",
            lambda sent, field, found: {"tfidf_code_document": _tfidf(sent, field)},
            lambda row: _column(
                row, "tfidf_code_document", lambda value: {"valueQuantity": {"value": value}}
            ),
        ),
        ComponentKind(
            "count_concept",
            lambda sent, field, found: {
                "count_concept": _integer(sent.get("valueInteger"), field, "count_concept")
            },
            lambda row: _column(row, "count_concept", lambda value: {"valueInteger": value}),
        ),
        ComponentKind(
            "count_concept_str_found",
            lambda sent, field, found: {
                "count_concept_str_found": _integer(
                    sent.get("valueInteger"), field, "count_concept_str_found"
                )
            },
            lambda row: _column(
                row, "count_concept_str_found", lambda value: {"valueInteger": value}
            ),
        ),
        ComponentKind(
            "negation",
            lambda sent, field, found: {
                "certainty": NEGATED if _boolean(sent, field, "negation") else AFFIRMED
            },
            lambda row: _column(row, "certainty", lambda value: {"valueBoolean": value < 0}),
        ),
        ComponentKind(
            "hypothesis",
            lambda sent, field, found: {"hypothesis": _boolean(sent, field, "hypothesis")},
            lambda row: _column(row, "hypothesis", lambda value: {"valueBoolean": bool(value)}),
        ),
        ComponentKind(
            "family",
            lambda sent, field, found: {
                "context": FAMILY_TEXT if _boolean(sent, field, "family") else PATIENT_TEXT
            },
            lambda row: _column(
                row, "context", lambda value: {"valueBoolean": value == FAMILY_TEXT}
            ),
        ),
    )
}
DEFAULTS = {"certainty": AFFIRMED, "context": PATIENT_TEXT, "hypothesis": False}


def component_code(component: dict[str, Any]) -> str | None:
    """The phenotype component a component is (code.coding[0].code in COMPONENT_SYSTEM or
    without system, else code.text), or None: another component (a clinician's score, a
    measurement), kept with the row and answered as sent."""
    concept = component.get("code") or {}
    codings = concept.get("coding") or []
    if codings:
        system = codings[0].get("system")
        code = codings[0].get("code") if system in (None, COMPONENT_SYSTEM) else None
    else:
        code = concept.get("text")
    return str(code) if code in COMPONENTS else None
