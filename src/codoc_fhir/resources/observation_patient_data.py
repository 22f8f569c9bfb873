"""Observation patient data (weight, height, blood group, allergy...): `dwh_patient_data`.

No thesaurus binding: the code keeps its own system, code and display. FHIR ids carry the
prefix `patient-data-`; the Codoc path `/observation/patient-data/{n}/` takes the number.

On POST to the generic Observation paths this kind is chosen when a category says so
(see `accepts_create`); the answer always carries a category that makes it choose this
kind again, so a resource read here can be posted back as it is.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import RowMapping

from codoc_fhir.fhir import identifiers
from codoc_fhir.fhir.dates import format_datetime, parse_datetime
from codoc_fhir.fhir.references import reference_dict
from codoc_fhir.fhir.validation import check_code, require
from codoc_fhir.resources import links, values
from codoc_fhir.resources.base import Resource
from codoc_fhir.resources.concepts import first_coding
from codoc_fhir.resources.data_fact import dump_extra
from codoc_fhir.search import declare
from codoc_fhir.warehouse.schema import dwh_patient_data

HL7_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
KIND_SYSTEM = "urn:codoc:fhir:observation-kind"
KIND_CATEGORY = {
    "coding": [{"system": KIND_SYSTEM, "code": "patient-data", "display": "Patient data"}]
}
# HL7 observation categories that describe a patient trait rather than a lab result
PATIENT_DATA_CATEGORIES = ("vital-signs", "social-history")
KEPT_ELEMENTS = ("interpretation", "note", "method", "bodySite", "issued", "dataAbsentReason")
CODE_PATHS: list[values.Path] = [
    ("coding", 0, "system"),
    ("coding", 0, "code"),
    ("coding", 0, "display"),
]


def is_patient_data_category(category: Any) -> bool:
    """A Codoc patient-data kind coding, or an HL7 vital-signs / social-history coding."""
    for concept in category if isinstance(category, list) else []:
        for coding in (concept.get("coding") or []) if isinstance(concept, dict) else []:
            if not isinstance(coding, dict):
                continue
            system, code = coding.get("system"), coding.get("code")
            if system == KIND_SYSTEM and code == "patient-data":
                return True
            if system in (None, HL7_CATEGORY) and code in PATIENT_DATA_CATEGORIES:
                return True
    return False


class PatientDataObservation(Resource):
    """A patient trait with its own code system."""

    fhir_type = "Observation"
    label = "Observation"
    table = dwh_patient_data
    codoc_path = "observation/patient-data"
    id_prefix = "patient-data-"
    search_params = {
        "subject": declare.patient_reference("subject", dwh_patient_data.c.patient_num),
        "patient": declare.patient_reference("patient", dwh_patient_data.c.patient_num),
        "code": declare.token(
            "code", dwh_patient_data.c.code, system_column=dwh_patient_data.c.code_system
        ),
        "date": declare.date("date", dwh_patient_data.c.effective_date),
        "encounter": declare.reference(
            "encounter", declare.RefTarget("Encounter", dwh_patient_data.c.stay_num)
        ),
        "value-quantity": declare.quantity(
            "value-quantity",
            dwh_patient_data.c.val_numeric,
            system=dwh_patient_data.c.unit_system,
            code=dwh_patient_data.c.unit_code,
            unit=dwh_patient_data.c.data_unit,
        ),
        "identifier": declare.token("identifier", dwh_patient_data.c.id_data_source),
    }

    def __init__(self, settings: Any = None) -> None:
        self.settings = settings

    def accepts_create(self, body: dict[str, Any]) -> bool:
        return is_patient_data_category(body.get("category"))

    # --- input -------------------------------------------------------------------------

    def to_values(
        self, conn: Connection, body: dict[str, Any], current: RowMapping | None
    ) -> dict[str, Any]:
        table = dwh_patient_data
        status = check_code(require(body, "status"), values.OBSERVATION_STATUS, "status")
        code = first_coding(require(body, "code"), "code")
        effective = parse_datetime(require(body, "effectiveDateTime"), "effectiveDateTime")
        patient = links.patient_num(conn, body.get("subject"), "subject")
        encounter = body.get("encounter")
        row: dict[str, Any] = {
            "patient_num": patient,
            "stay_num": links.stay_num(conn, encounter, "encounter", patient)
            if encounter
            else None,
            "code_system": values.fit(table.c.code_system, code.get("system"), "code"),
            "code": values.fit(table.c.code, code["code"], "code"),
            "code_display": values.fit(table.c.code_display, code.get("display"), "code"),
            "status": status,
            "effective_date": effective,
            "id_data_source": values.fit(
                table.c.id_data_source, identifiers.single_usual_identifier(body), "identifier"
            ),
        }
        value_columns, extra = values.value_columns(table, body)
        row.update(value_columns)
        extra.update(values.kept_elements(body, ("category", *KEPT_ELEMENTS)))
        extra["code"] = values.split(body["code"], CODE_PATHS)
        row["extra_json"] = dump_extra(extra)
        return row

    # --- output ------------------------------------------------------------------------

    def to_fhir(self, row: RowMapping, related: dict[str, Any]) -> dict[str, Any]:
        extra = values.extra_of(row)
        ident = self.fhir_id(row["patient_data_num"])
        found = identifiers.official_and_usual(ident, row["id_data_source"])
        resource: dict[str, Any] = {
            "resourceType": "Observation",
            "id": ident,
            "identifier": found,
            "status": row["status"] or "final",
            "category": self.category(extra.get("category")),
            "code": values.overlay(
                extra.get("code"),
                [
                    (("coding", 0, "system"), row["code_system"]),
                    (("coding", 0, "code"), row["code"]),
                    (("coding", 0, "display"), row["code_display"]),
                ],
            ),
            "subject": reference_dict("Patient", row["patient_num"]),
        }
        if row["stay_num"] is not None:
            resource["encounter"] = reference_dict("Encounter", row["stay_num"])
        resource["effectiveDateTime"] = format_datetime(row["effective_date"])
        resource.update(values.kept_elements(extra, KEPT_ELEMENTS))
        resource.update(values.value_answer(row, extra))
        return resource

    @staticmethod
    def category(sent: Any) -> list[dict[str, Any]]:
        """The categories sent, plus the patient-data kind when none of them tells it."""
        categories = list(sent) if isinstance(sent, list) else []
        if not is_patient_data_category(categories):
            categories.append(KIND_CATEGORY)
        return categories
