"""Observation phenotype from FHIR: the components as dwh_enrsem columns, the checks on the
shape of the components and on the concept, the text found in the document."""

from __future__ import annotations

from typing import Any

from codoc_fhir.fhir.errors import Invalid
from codoc_fhir.fhir.validation import require, text_value
from codoc_fhir.resources import concepts
from codoc_fhir.resources.observation_phenotype.components import (
    COMPONENTS,
    DEFAULTS,
    component_code,
)


def component_values(body: dict[str, Any], found: str) -> dict[str, Any]:
    """dwh_enrsem columns from the phenotype components (each code at most once)."""
    values: dict[str, Any] = dict(DEFAULTS)
    seen: set[str] = set()
    for position, component in enumerate(body.get("component") or []):
        field = f"component[{position}]"
        code = component_code(component)
        if code is None:
            continue
        if code in seen:
            raise Invalid(f"Component {code} is given twice", expression=[field])
        seen.add(code)
        values.update(COMPONENTS[code].read(component, field, found))
    return values


def check_component_shape(body: Any) -> None:
    """Each component an object with at most one value[x] (before the model check)."""
    components = body.get("component") if isinstance(body, dict) else None
    if not isinstance(components, list):
        return
    for position, component in enumerate(components):
        if not isinstance(component, dict):
            raise Invalid("component entries must be objects", expression=["component"])
        sent = [name for name in component if name.startswith("value")]
        if len(sent) > 1:
            raise Invalid(
                f"component[{position}] has more than one value[x]: {', '.join(sent)}",
                expression=[f"component[{position}]"],
            )


def found_text(body: dict[str, Any]) -> str:
    """The text found in the document (concept_str_found): the valueString, as NLP writes
    it; for a phenotype sent with another value[x] (a score, a coded value: kept and
    answered as sent), the concept's text, else its first coding's display or code."""
    if "valueString" in body or not any(name.startswith("value") for name in body):
        return str(text_value(require(body, "valueString"), "valueString", 2000))
    concept = body.get("code") or {}
    coding = (concept.get("coding") or [{}])[0]
    label = concept.get("text") or coding.get("display") or coding.get("code") or ""
    return str(text_value(str(label), "code", 2000))


def check_concept(concept: Any) -> Any:
    """code.coding[0] fits the thesaurus columns (concept_code, concept_str)."""
    coding = concepts.first_coding(concept, "code")
    text_value(str(coding["code"]), "code.coding[0].code", 100)
    for field, value in (
        ("code.coding[0].display", coding.get("display")),
        ("code.text", concept.get("text")),
    ):
        if value is not None:
            text_value(value, field, 2000)
    return concept


def as_r4b_component(component: dict[str, Any]) -> dict[str, Any]:
    """`valueDecimal` (sent by the semantic-enrichment guide) as the R4B valueQuantity."""
    if "valueDecimal" not in component:
        return component
    copy = {name: value for name, value in component.items() if name != "valueDecimal"}
    copy["valueQuantity"] = {"value": component["valueDecimal"]}
    return copy
