"""Observation patient data (weight, height, blood group, allergy...): `dwh_patient_data`.

No thesaurus binding: the code keeps its own system, code and display. FHIR ids carry the
prefix `patient-data-`; the Codoc path `/observation/patient-data/{n}/` takes the number.

On POST to the generic Observation paths this kind is chosen when a category says so
(see `accepts_create`); the answer always carries a category that makes it choose this
kind again, so a resource read here can be posted back as it is.

Elements with no column (category, interpretation, component, codings after the first...)
are kept with the row (fhir_kept) and answered as sent; extra_json only holds the markers
the answer needs to take the form sent (the value label, the date form, the movement).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import RowMapping

from codoc_fhir.fhir import identifiers
from codoc_fhir.fhir.dates import format_datetime
from codoc_fhir.fhir.references import reference_dict
from codoc_fhir.fhir.validation import check_code, require
from codoc_fhir.resources import links, values
from codoc_fhir.resources.base import Resource
from codoc_fhir.resources.concepts import first_coding
from codoc_fhir.resources.data_fact import date_marker, dump_extra, event_date, markers_of
from codoc_fhir.search import declare
from codoc_fhir.warehouse.schema import dwh_patient_data

HL7_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
KIND_SYSTEM = "urn:codoc:fhir:observation-kind"
KIND_CATEGORY = {
    "coding": [{"system": KIND_SYSTEM, "code": "patient-data", "display": "Patient data"}]
}
# HL7 observation categories that describe a patient trait rather than a lab result
PATIENT_DATA_CATEGORIES = ("vital-signs", "social-history")


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
        effective = event_date(body, "effective")
        patient = links.patient_num(conn, body.get("subject"), "subject")
        encounter = body.get("encounter")
        row: dict[str, Any] = {
            "patient_num": patient,
            "stay_num": links.stay_of_encounter(conn, encounter, "encounter", patient)
            if encounter
            else None,
            "code_system": values.fit(table.c.code_system, code.get("system"), "code"),
            "code": values.fit(table.c.code, code["code"], "code"),
            "code_display": values.fit(table.c.code_display, code.get("display"), "code"),
            "status": status,
            "effective_date": effective.start,
            "id_data_source": values.fit(
                table.c.id_data_source, identifiers.first_usual_identifier(body), "identifier"
            ),
        }
        value_columns, markers = values.value_columns(table, body)
        row.update(value_columns)
        markers.update(
            dateForm=date_marker(effective),
            movement=links.movement_of(encounter),
            # whether the answer adds the kind's category (no category sent tells it)
            kindCategory=not is_patient_data_category(body.get("category")),
        )
        row["extra_json"] = dump_extra(markers)
        return row

    # --- output ------------------------------------------------------------------------

    def to_fhir(self, row: RowMapping, related: dict[str, Any]) -> dict[str, Any]:
        markers = markers_of(row)
        ident = self.fhir_id(row["patient_data_num"])
        found = identifiers.official_and_usual(ident, row["id_data_source"])
        resource: dict[str, Any] = {
            "resourceType": "Observation",
            "id": ident,
            "identifier": found,
            "status": row["status"] or "final",
        }
        if markers.get("kindCategory", True):  # else the category sent is kept, answered
            resource["category"] = [KIND_CATEGORY]
        coding = {"system": row["code_system"], "code": row["code"], "display": row["code_display"]}
        resource["code"] = {"coding": [{k: v for k, v in coding.items() if v is not None}]}
        resource["subject"] = reference_dict("Patient", row["patient_num"])
        if row["stay_num"] is not None:
            movement = markers.get("movement")
            stay = f"movement-{movement}" if movement else row["stay_num"]
            resource["encounter"] = reference_dict("Encounter", stay)
        start = format_datetime(row["effective_date"])
        if markers.get("dateForm") == "Period":
            resource["effectivePeriod"] = {"start": start}
        elif markers.get("dateForm") == "PeriodEnd":
            resource["effectivePeriod"] = {"end": start}
        else:
            resource[f"effective{markers.get('dateForm') or 'DateTime'}"] = start
        resource.update(values.value_answer(row, markers))
        return resource
