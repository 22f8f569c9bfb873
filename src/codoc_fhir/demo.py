"""A small, realistic demo data set, loaded through the same mappings as the API.

Idempotent per resource: every demo resource carries a usual identifier and is loaded by
a conditional create on it, so the demo goes into a database that already holds other data,
and a second run adds nothing. References between demo resources name a demo key
(`Patient/@claire`), replaced by the id the warehouse gave (or had given) that resource.
"""

from __future__ import annotations

import base64
from typing import Any

from sqlalchemy import Connection

from codoc_fhir.config import Settings
from codoc_fhir.interactions.conditional import create_unless_exists
from codoc_fhir.resources.registry import Registry, build_registry
from codoc_fhir.warehouse.db import make_engine, write_transaction


def _org(code: str, name: str, level: str, parent: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Organization",
        "identifier": [{"use": "usual", "value": code}],
        "name": name,
        "type": [{"coding": [{"code": level}]}],
    }
    if parent:
        body["partOf"] = {"reference": f"Organization/@{parent}"}
    return body


DISCHARGE_SUMMARY = (
    "<h1>Discharge summary</h1><p>Admitted for acute <b>heart failure</b>; echocardiography "
    "shows an LVEF of 55%. No family history of heart failure. Discharged home on "
    "bisoprolol.</p>"
)

DEMO: list[dict[str, Any]] = [
    _org("HOSP001", "Paris University Hospital", "prov"),
    _org("CARD001", "Cardiology Department", "dept", "HOSP001"),
    _org("ICU001", "Cardiac Intensive Care Unit", "team", "CARD001"),
    _org("GAST001", "Gastroenterology Department", "dept", "HOSP001"),
    {
        "resourceType": "Patient",
        "identifier": [{"use": "usual", "value": "IPP123456"}],
        "name": [{"family": "Martin", "given": ["Claire"]}],
        "gender": "female",
        "birthDate": "1968-03-22",
        "managingOrganization": {"reference": "Organization/@CARD001"},
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
        "identifier": [{"use": "usual", "value": "DEMO-STAY-1"}],
        "status": "finished",
        "class": {"code": "IMP"},
        "subject": {"reference": "Patient/@IPP123456"},
        "period": {"start": "2024-01-14T08:00:00Z", "end": "2024-01-20T11:00:00Z"},
        "serviceProvider": {"reference": "Organization/@CARD001"},
    },
    {
        "resourceType": "Encounter",
        "identifier": [{"use": "usual", "value": "DEMO-MVT-1"}],
        "status": "finished",
        "class": {"code": "IMP"},
        "subject": {"reference": "Patient/@IPP123456"},
        "partOf": {"reference": "Encounter/@DEMO-STAY-1"},
        "period": {"start": "2024-01-14T08:00:00Z", "end": "2024-01-16T09:00:00Z"},
        "serviceProvider": {"reference": "Organization/@ICU001"},
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
        "identifier": [{"use": "usual", "value": "DEMO-PROC-1"}],
        "status": "completed",
        "code": {"coding": [{"code": "DZQM006", "display": "Transthoracic echocardiography"}]},
        "subject": {"reference": "Patient/@IPP123456"},
        "encounter": {"reference": "Encounter/@DEMO-STAY-1"},
        "performedDateTime": "2024-01-15T14:00:00Z",
        "performer": [{"actor": {"reference": "Organization/@CARD001"}}],
    },
    {
        "resourceType": "Condition",
        "identifier": [{"use": "usual", "value": "DEMO-COND-1"}],
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active",
                }
            ]
        },
        "code": {"coding": [{"code": "I50.0", "display": "Congestive heart failure"}]},
        "subject": {"reference": "Patient/@IPP123456"},
        "encounter": {"reference": "Encounter/@DEMO-STAY-1"},
        "onsetDateTime": "2024-01-14T08:00:00Z",
        "recordedDate": "2024-01-15T16:00:00Z",
    },
    {
        "resourceType": "Observation",
        "identifier": [{"use": "usual", "value": "DEMO-LAB-1"}],
        "status": "final",
        "code": {"coding": [{"code": "GLU", "display": "Glucose"}]},
        "subject": {"reference": "Patient/@IPP123456"},
        "encounter": {"reference": "Encounter/@DEMO-STAY-1"},
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
        "identifier": [{"use": "usual", "value": "DEMO-WEIGHT-1"}],
        "status": "final",
        "category": [{"coding": [{"code": "vital-signs"}]}],
        "code": {
            "coding": [{"system": "http://loinc.org", "code": "29463-7", "display": "Body Weight"}]
        },
        "subject": {"reference": "Patient/@IPP123456"},
        "effectiveDateTime": "2024-01-14T09:00:00Z",
        "valueQuantity": {"value": 68, "unit": "kg"},
    },
    {
        "resourceType": "MedicationRequest",
        "identifier": [{"use": "usual", "value": "DEMO-MED-1"}],
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"coding": [{"code": "B01AC06", "display": "Aspirin 75 mg"}]},
        "subject": {"reference": "Patient/@IPP123456"},
        "encounter": {"reference": "Encounter/@DEMO-STAY-1"},
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
        "identifier": [{"use": "usual", "value": "DEMO-REPORT-1"}],
        "status": "final",
        "code": {"coding": [{"code": "ECHO-TT", "display": "Transthoracic echocardiography"}]},
        "subject": {"reference": "Patient/@IPP123456"},
        "encounter": {"reference": "Encounter/@DEMO-STAY-1"},
        "effectiveDateTime": "2024-01-15T14:00:00Z",
        "conclusion": "LVEF 55%, no valve disease.",
        "performer": [{"reference": "Organization/@CARD001"}],
    },
    {
        "resourceType": "DocumentReference",
        "identifier": [{"use": "usual", "value": "DEMO-DOC-1"}],
        "status": "current",
        "subject": {"reference": "Patient/@IPP123456"},
        "date": "2024-01-20T10:00:00Z",
        "context": {"encounter": [{"reference": "Encounter/@DEMO-STAY-1"}]},
        "author": [
            {"display": "Dr. Bernard"},
            {"reference": "Organization/@CARD001"},
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
        "identifier": [{"use": "usual", "value": "DEMO-PHENOTYPE-1"}],
        "status": "final",
        "code": {"coding": [{"code": "C0018802", "display": "Congestive heart failure"}]},
        "subject": {"reference": "Patient/@IPP123456"},
        "derivedFrom": [{"reference": "DocumentReference/@DEMO-DOC-1"}],
        "valueString": "heart failure",
        "component": [
            {"code": {"coding": [{"code": "phenotype"}]}, "valueInteger": 1},
            {"code": {"coding": [{"code": "semantic_type"}]}, "valueString": "Disease"},
            {"code": {"coding": [{"code": "count_concept"}]}, "valueInteger": 2},
        ],
    },
]


def load_demo(settings: Settings) -> str:
    """Load the DEMO resources the warehouse lacks (by identifier); say what happened."""
    registry = build_registry(settings)
    engine = make_engine(settings.database_url)
    try:
        with write_transaction(engine) as conn:
            ids: dict[str, str] = {}
            created = sum(_load_one(conn, registry, body, ids) for body in DEMO)
    finally:
        engine.dispose()
    if not created:
        return "demo data already present: nothing loaded"
    present = len(DEMO) - created
    return f"demo data loaded: {created} resources" + (
        f" ({present} already present)" if present else ""
    )


def _load_one(
    conn: Connection, registry: Registry, body: dict[str, Any], ids: dict[str, str]
) -> bool:
    """Create `body` unless a resource of its type has its identifier; True when created.

    `ids` maps each demo key (`Patient/@IPP123456`) to the real reference, filled as the
    resources are loaded (in order: a resource only names the ones before it).
    """
    fhir_type = registry.types[body["resourceType"]]
    body = _with_real_references(body, ids)
    key = body["identifier"][0]["value"]
    condition = [("identifier", key)]
    kind = fhir_type.kind_for_create(body)
    resource, status = create_unless_exists(
        conn, fhir_type.kinds, kind, body, condition, known_types=list(registry.types)
    )
    ids[f"{fhir_type.name}/@{key}"] = f"{fhir_type.name}/{resource['id']}"
    return status == 201


def _with_real_references(value: Any, ids: dict[str, str]) -> Any:
    """`value` with every `{"reference": "Type/@key"}` replaced by the loaded resource's."""
    if isinstance(value, dict):
        return {
            name: ids[item]
            if name == "reference" and item in ids
            else _with_real_references(item, ids)
            for name, item in value.items()
        }
    if isinstance(value, list):
        return [_with_real_references(item, ids) for item in value]
    return value
