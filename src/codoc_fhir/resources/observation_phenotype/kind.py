"""The Observation phenotype kind: an NLP concept found in a document, one `dwh_enrsem` row.

Bound to the thesaurus THESAURUS_CODE_PHENOTYPE (default `Phenotypes`). The NLP details
travel as components (components.py), accepted with the component code as
`code.coding[0].code` or `code.text` and answered in one canonical form (coding in
COMPONENT_SYSTEM); the mappings are in from_fhir.py and to_fhir.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import RowMapping

from codoc_fhir.config import Settings
from codoc_fhir.fhir import identifiers
from codoc_fhir.fhir.dates import format_datetime
from codoc_fhir.fhir.references import reference_dict, reference_target
from codoc_fhir.fhir.validation import check_code, require, text_value
from codoc_fhir.resources import concepts, links
from codoc_fhir.resources.base import Resource
from codoc_fhir.resources.observation_phenotype.components import OBSERVATION_STATUS, component_code
from codoc_fhir.resources.observation_phenotype.from_fhir import (
    as_r4b_component,
    check_component_shape,
    check_concept,
    component_values,
    found_text,
)
from codoc_fhir.resources.observation_phenotype.to_fhir import (
    COMPONENT_COLUMNS,
    answered_components,
    sent_another_value,
)
from codoc_fhir.search import catalog
from codoc_fhir.warehouse.schema import dwh_enrsem


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
