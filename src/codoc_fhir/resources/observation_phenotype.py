"""Observation phenotype: an NLP concept found in a document, one `dwh_enrsem` row.

Bound to the thesaurus THESAURUS_CODE_PHENOTYPE (default `Phenotypes`). The NLP details
(phenotype flag, semantic type, tf-idf, counts, negation, hypothesis, family context) travel
as components, accepted with the component code as `code.coding[0].code` or `code.text`
and answered in one canonical form (coding in COMPONENT_SYSTEM).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection
from sqlalchemy.engine import RowMapping

from codoc_fhir.config import Settings
from codoc_fhir.fhir import identifiers
from codoc_fhir.fhir.dates import format_datetime
from codoc_fhir.fhir.errors import Invalid
from codoc_fhir.fhir.references import reference_dict, reference_target
from codoc_fhir.fhir.validation import check_code, require, text_value
from codoc_fhir.resources import concepts, links
from codoc_fhir.resources.base import Resource
from codoc_fhir.search import catalog
from codoc_fhir.warehouse.schema import dwh_enrsem

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


def sent_another_value(row: RowMapping) -> bool:
    """Whether the phenotype was sent with a value[x] other than valueString (then kept
    with the row): its found text is not answered as a valueString beside it."""
    kept = row.get("fhir_kept")
    if not kept:
        return False
    elements = orjson.loads(kept).get("elements") or {}
    return any(name.startswith("value") and name != "valueString" for name in elements)


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


# --- the resource ------------------------------------------------------------------------


class ObservationPhenotype(Resource):
    fhir_type = "Observation"
    label = "Observation"
    table = dwh_enrsem
    codoc_path = "observation/phenotype"
    id_prefix = "phenotype-"
    search_params = catalog.phenotype_params()
    answer_reads_kept = True  # valueString only when no other value[x] was sent

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.thesaurus_code: str = settings.thesaurus_phenotype

    def scope(self) -> Any:
        return dwh_enrsem.c.thesaurus_code == self.thesaurus_code

    def accepts_create(self, body: dict[str, Any]) -> bool:
        """A POST on /Observation derived from a document (derivedFrom[0] a
        DocumentReference) is a phenotype; one derived from other Observations (a lab
        panel, a score) is not."""
        derived = body.get("derivedFrom")
        first = derived[0] if isinstance(derived, list) and derived else None
        if first is None:
            return False
        target = reference_target(first)  # None: not a plain reference, the phenotype says so
        return target is None or target[0].lower() == "documentreference"

    def validate(self, body: Any) -> dict[str, Any]:
        """The model check, on a copy where the guide's `valueDecimal` (not an R4B
        component type) reads as a valueQuantity; the body itself is kept as sent."""
        check_component_shape(body)
        if not isinstance(body, dict) or not isinstance(body.get("component"), list):
            return super().validate(body)
        checked = dict(body, component=[as_r4b_component(item) for item in body["component"]])
        super().validate(checked)
        return body

    def kept_source(self, body: dict[str, Any]) -> dict[str, Any]:
        """The phenotype components in their canonical form (answered from the columns),
        then the other components as sent: only those are kept."""
        others = [item for item in body.get("component") or [] if component_code(item) is None]
        rest = {name: value for name, value in body.items() if name != "component"}
        if not others:
            return rest
        columns = dict.fromkeys(COMPONENT_COLUMNS) | component_values(body, found_text(body))
        return rest | {"component": [*answered_components(columns), *others]}

    def to_values(
        self, conn: Connection, body: dict[str, Any], current: RowMapping | None
    ) -> dict[str, Any]:
        check_code(require(body, "status"), OBSERVATION_STATUS, "status")
        concept = check_concept(require(body, "code"))
        patient = links.patient_num(conn, body.get("subject"), "subject")
        derived = require(body, "derivedFrom")  # the first: the document; the others are kept
        document = links.document_num(conn, derived[0], "derivedFrom[0]", patient)
        found = found_text(body)
        source_id = identifiers.first_usual_identifier(body)
        values = component_values(body, found)
        values.update(
            document_num=document.document_num,
            patient_num=patient,
            thesaurus_code=self.thesaurus_code,
            thesaurus_data_num=concepts.resolve_concept(
                conn, self.thesaurus_code, concept, "code", strict=self.settings.strict_codes
            ),
            concept_str_found=found,
            document_date=document.document_date,
            id_enrsem_source=text_value(source_id, "identifier", 300) if source_id else None,
        )
        return values

    def load_related(self, conn: Connection, rows: Sequence[RowMapping]) -> dict[str, Any]:
        return {
            "concepts": concepts.concepts_by_num(conn, (row["thesaurus_data_num"] for row in rows))
        }

    def to_fhir(self, row: RowMapping, related: dict[str, Any]) -> dict[str, Any]:
        ident = self.fhir_id(row["enrsem_num"])
        found = identifiers.official_and_usual(ident, row["id_enrsem_source"])
        resource: dict[str, Any] = {
            "resourceType": "Observation",
            "id": ident,
            "identifier": found,
            "status": "final",
            "code": concepts.codeable_concept(related["concepts"][row["thesaurus_data_num"]]),
            "subject": reference_dict("Patient", row["patient_num"]),
            "derivedFrom": [reference_dict("DocumentReference", row["document_num"])],
        }
        if not sent_another_value(row):
            resource["valueString"] = row["concept_str_found"]
        if row["document_date"] is not None:
            resource["effectiveDateTime"] = format_datetime(row["document_date"])
        components = answered_components(row)
        if components:
            resource["component"] = components
        return resource
