"""A small, realistic demo data set, loaded through the same mappings as the API.

Idempotent: nothing is loaded when the warehouse already holds patients.
"""

from __future__ import annotations

import base64
from typing import Any

from sqlalchemy import func, select

from codoc_fhir.config import Settings
from codoc_fhir.resources.registry import build_registry
from codoc_fhir.warehouse.db import make_engine
from codoc_fhir.warehouse.schema import dwh_patient


def _org(code: str, name: str, level: str, parent: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Organization",
        "identifier": [{"use": "usual", "value": code}],
        "name": name,
        "type": [{"coding": [{"code": level}]}],
    }
    if parent:
        body["partOf"] = {"reference": f"Organization/{parent}"}
    return body


DISCHARGE_SUMMARY = (
    "<h1>Discharge summary</h1><p>Admitted for acute <b>heart failure</b>; echocardiography "
    "shows an LVEF of 55%. No family history of heart failure. Discharged home on "
    "bisoprolol.</p>"
)

DEMO: list[dict[str, Any]] = [
    _org("HOSP001", "Paris University Hospital", "prov"),
    _org("CARD001", "Cardiology Department", "dept", "site-1"),
    _org("ICU001", "Cardiac Intensive Care Unit", "team", "department-1"),
    _org("GAST001", "Gastroenterology Department", "dept", "site-1"),
    {
        "resourceType": "Patient",
        "identifier": [{"use": "usual", "value": "IPP123456"}],
        "name": [{"family": "Martin", "given": ["Claire"]}],
        "gender": "female",
        "birthDate": "1968-03-22",
        "managingOrganization": {"reference": "Organization/department-1"},
    },
    {
        "resourceType": "Patient",
        "identifier": [{"use": "usual", "value": "IPP654321"}],
        "name": [{"family": "Durand", "given": ["Paul", "Henri"]}],
        "gender": "male",
        "birthDate": "1955-11-02",
    },
    {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"code": "IMP"},
        "subject": {"reference": "Patient/1"},
        "period": {"start": "2024-01-14T08:00:00Z", "end": "2024-01-20T11:00:00Z"},
        "serviceProvider": {"reference": "Organization/department-1"},
    },
    {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"code": "IMP"},
        "subject": {"reference": "Patient/1"},
        "partOf": {"reference": "Encounter/1"},
        "period": {"start": "2024-01-14T08:00:00Z", "end": "2024-01-16T09:00:00Z"},
        "serviceProvider": {"reference": "Organization/unit-1"},
    },
    {
        "resourceType": "CodeSystem",
        "identifier": [{"use": "usual", "value": "ALLERGIES"}],
        "name": "Allergies",
        "title": "Allergies Thesaurus",
        "status": "active",
        "content": "complete",
        "concept": [
            {"code": "PENICILLIN", "display": "Penicillin allergy"},
            {"code": "LATEX", "display": "Latex allergy"},
        ],
    },
    {
        "resourceType": "Procedure",
        "status": "completed",
        "code": {"coding": [{"code": "DZQM006", "display": "Transthoracic echocardiography"}]},
        "subject": {"reference": "Patient/1"},
        "encounter": {"reference": "Encounter/1"},
        "performedDateTime": "2024-01-15T14:00:00Z",
        "performer": [{"actor": {"reference": "Organization/department-1"}}],
    },
    {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"code": "GLU", "display": "Glucose"}]},
        "subject": {"reference": "Patient/1"},
        "encounter": {"reference": "Encounter/1"},
        "effectiveDateTime": "2024-01-15T07:00:00Z",
        "valueQuantity": {
            "value": 5.4,
            "unit": "mmol/L",
            "system": "http://unitsofmeasure.org",
            "code": "mmol/L",
        },
    },
    {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"code": "vital-signs"}]}],
        "code": {
            "coding": [{"system": "http://loinc.org", "code": "29463-7", "display": "Body Weight"}]
        },
        "subject": {"reference": "Patient/1"},
        "effectiveDateTime": "2024-01-14T09:00:00Z",
        "valueQuantity": {"value": 68, "unit": "kg"},
    },
    {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"coding": [{"code": "B01AC06", "display": "Aspirin 75 mg"}]},
        "subject": {"reference": "Patient/1"},
        "encounter": {"reference": "Encounter/1"},
        "authoredOn": "2024-01-15T09:00:00Z",
        "dosageInstruction": [
            {
                "doseAndRate": [{"doseQuantity": {"value": 75, "unit": "mg"}}],
                "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                "route": {"text": "Oral"},
            }
        ],
    },
    {
        "resourceType": "DiagnosticReport",
        "status": "final",
        "code": {"coding": [{"code": "ECHO-TT", "display": "Transthoracic echocardiography"}]},
        "subject": {"reference": "Patient/1"},
        "encounter": {"reference": "Encounter/1"},
        "effectiveDateTime": "2024-01-15T14:00:00Z",
        "conclusion": "LVEF 55%, no valve disease.",
        "performer": [{"reference": "Organization/department-1"}],
    },
    {
        "resourceType": "DocumentReference",
        "status": "current",
        "subject": {"reference": "Patient/1"},
        "date": "2024-01-20T10:00:00Z",
        "context": {"encounter": [{"reference": "Encounter/1"}]},
        "author": [
            {"display": "Dr. Bernard"},
            {"reference": "Organization/department-1"},
        ],
        "content": [
            {
                "attachment": {
                    "contentType": "text/html",
                    "title": "Discharge summary",
                    "data": base64.b64encode(DISCHARGE_SUMMARY.encode()).decode(),
                }
            }
        ],
    },
    {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"code": "C0018802", "display": "Congestive heart failure"}]},
        "subject": {"reference": "Patient/1"},
        "derivedFrom": [{"reference": "DocumentReference/1"}],
        "valueString": "heart failure",
        "component": [
            {"code": {"coding": [{"code": "phenotype"}]}, "valueInteger": 1},
            {"code": {"coding": [{"code": "semantic_type"}]}, "valueString": "Disease"},
            {"code": {"coding": [{"code": "count_concept"}]}, "valueInteger": 2},
        ],
    },
]


def load_demo(settings: Settings) -> str:
    """Load DEMO unless the warehouse already has patients; say what happened."""
    registry = build_registry(settings)
    engine = make_engine(settings.database_url)
    try:
        with engine.begin() as conn:
            if conn.execute(select(func.count()).select_from(dwh_patient)).scalar_one():
                return "demo data already present: nothing loaded"
            loaded = 0
            for body in DEMO:
                fhir_type = registry.types.get(body["resourceType"])
                if fhir_type is None:
                    continue
                fhir_type.kind_for_create(body).create(conn, body)
                loaded += 1
        return f"demo data loaded: {loaded} resources"
    finally:
        engine.dispose()
