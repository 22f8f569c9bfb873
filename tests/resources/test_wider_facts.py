"""CONTRACT section 9, "wider than the warehouse is accepted", for the facts (Procedure,
DiagnosticReport, MedicationRequest, lab Observation, patient-data Observation) and
DocumentReference: each case is a 201, the row gets what fits, and the read answers what
was sent, but for the differences section 9 allows (id, meta, the official identifier first,
`use: usual` on the identifier the column holds, the thesaurus coding first, Organization
display, the fixed status values, the performer function the server sets).
"""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest
from sqlalchemy import select

from codoc_fhir.warehouse.schema import (
    dwh_data,
    dwh_document,
    dwh_patient_data,
    fhir_token,
)
from tests.factories import (
    make_department,
    make_movement,
    make_patient,
    make_site,
    make_stay,
    make_unit,
)

ACTE = "urn:codoc:fhir:codesystem:Acte"
DIAGNOSTIC = "urn:codoc:fhir:codesystem:Diagnostic"
PRESCRIPTION = "urn:codoc:fhir:codesystem:Prescription"
BIOLOGIE = "urn:codoc:fhir:codesystem:Biologie"
LEVEL = "urn:codoc:fhir:organization-level"
PEOPLE = [  # every kind of person or device section 9 accepts as author / performer
    {"reference": "Practitioner/pr-1", "display": "Dr. Ada Martin"},
    {"reference": "PractitionerRole/role-1"},
    {"reference": "RelatedPerson/rp-1", "display": "Mother"},
    {"reference": "Patient/1"},
    {"reference": "Device/dev-1", "display": "Analyser"},
]


@pytest.fixture
def context(engine) -> dict[str, int]:
    site = make_site(engine)
    department = make_department(engine, code="RAD", name="Radiology", site_num=site)
    unit = make_unit(engine, department_num=department, code="MRI", name="MRI Unit")
    patient = make_patient(engine)
    make_stay(engine, patient_num=patient)
    stay = make_stay(engine, patient_num=patient)
    movement = make_movement(engine, patient_num=patient, stay_num=stay)
    return {"site": site, "department": department, "unit": unit, "stay": stay, "mvt": movement}


def fact_row(engine, num: int = 1) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(dwh_data).where(dwh_data.c.data_num == num)).mappings().one()


def answered(resource: dict[str, Any]) -> dict[str, Any]:
    """A read without what the server owns (id, meta)."""
    return {key: value for key, value in resource.items() if key not in ("id", "meta")}


def expected(sent: dict[str, Any], num: int = 1, **changes: Any) -> dict[str, Any]:
    """What section 9 lets a read answer for `sent`: the official identifier first and the
    kind's fixed values (`changes`); the sent identifiers as they were sent."""
    result = copy.deepcopy(sent)
    identifiers = result.get("identifier") or []
    result["identifier"] = [{"use": "official", "value": str(num)}, *identifiers]
    result.update(changes)
    return result


def create(client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(path, json=body)
    assert response.status_code == 201, response.text
    read = client.get(response.headers["location"])
    assert read.status_code == 200
    assert answered(read.json()) == answered(response.json())  # a read answers the create
    return read.json()


def round_trips(client, path: str, read: dict[str, Any]) -> None:
    """PUT of the read answers the read again (nothing lost or doubled on update)."""
    again = client.put(f"{path}{read['id']}/", json=read)
    assert again.status_code == 200, again.text
    assert answered(again.json()) == answered(read)


# --- Procedure ---------------------------------------------------------------------------

PROCEDURE = {
    "resourceType": "Procedure",
    "status": "completed",
    "code": {"coding": [{"system": ACTE, "code": "ECG", "display": "Electrocardiogram"}]},
    "subject": {"reference": "Patient/1"},
    "performedDateTime": "2024-01-15T10:00:00Z",
}


def test_procedure_people_and_device_performers_beside_a_department(client, context, engine):
    body = dict(
        PROCEDURE,
        performer=[
            *({"actor": person} for person in PEOPLE),
            {"actor": {"reference": "Organization/department-1"}},
        ],
    )
    read = create(client, "/v4.3.0/procedure/", body)
    department = {
        "function": {"coding": [{"system": LEVEL, "code": "department", "display": "Department"}]},
        "actor": {"reference": "Organization/department-1", "display": "Radiology"},
    }
    performers = [{"actor": person} for person in PEOPLE] + [department]
    assert answered(read) == expected(body, status="unknown", performer=performers)
    assert (fact_row(engine)["department_num"], fact_row(engine)["unit_num"]) == (1, None)
    round_trips(client, "/v4.3.0/procedure/", read)


def test_procedure_site_and_second_department_performers_are_kept(client, context, engine):
    second = make_department(engine, code="CARD", name="Cardiology")
    body = dict(
        PROCEDURE,
        performer=[
            {"actor": {"reference": "Organization/site-1"}},
            {"actor": {"reference": "Organization/department-1"}},
            {"actor": {"reference": f"Organization/department-{second}"}},
            {"actor": {"reference": "Organization/unit-1"}},
        ],
    )
    read = create(client, "/v4.3.0/procedure/", body)
    row = fact_row(engine)
    assert (row["department_num"], row["unit_num"]) == (1, 1)  # the first of each level
    references = [performer["actor"]["reference"] for performer in read["performer"]]
    assert references == [performer["actor"]["reference"] for performer in body["performer"]]
    assert read["performer"][0] == body["performer"][0]  # the site: kept as sent
    assert read["performer"][2] == body["performer"][2]


def test_procedure_encounter_naming_a_movement_gets_its_stay(client, context, engine):
    body = dict(PROCEDURE, encounter={"reference": f"Encounter/movement-{context['mvt']}"})
    read = create(client, "/v4.3.0/procedure/", body)
    assert answered(read) == expected(body, status="unknown")
    assert fact_row(engine)["stay_num"] == context["stay"]
    found = client.get(f"/v4.3.0/Procedure?encounter=Encounter/{context['stay']}").json()
    assert [entry["resource"]["id"] for entry in found["entry"]] == ["1"]


def test_procedure_several_identifiers(client, context, engine):
    body = dict(
        PROCEDURE,
        identifier=[
            {"system": "urn:his:acts", "value": "A-1"},
            {"use": "secondary", "system": "urn:other", "value": "X-9"},
            {"system": "urn:third", "value": "T-3", "assigner": {"reference": "Organization/x"}},
        ],
    )
    read = create(client, "/v4.3.0/procedure/", body)
    assert answered(read) == expected(body, status="unknown")
    assert fact_row(engine)["id_data_source"] == "A-1"
    round_trips(client, "/v4.3.0/procedure/", read)


def test_procedure_performed_period(client, context, engine):
    body = {key: value for key, value in PROCEDURE.items() if key != "performedDateTime"}
    body["performedPeriod"] = {"start": "2024-01-15T10:00:00Z", "end": "2024-01-15T11:30:00Z"}
    read = create(client, "/v4.3.0/procedure/", body)
    assert answered(read) == expected(body, status="unknown")
    row = fact_row(engine)
    assert (row["start_date"].hour, row["end_date"].hour, row["end_date"].minute) == (10, 11, 30)
    round_trips(client, "/v4.3.0/procedure/", read)


def test_procedure_references_in_kept_elements_are_stored_as_sent(client, context):
    body = dict(
        PROCEDURE,
        basedOn=[{"reference": "ServiceRequest/does-not-exist"}],
        partOf=[{"reference": "Procedure/999"}],
        reasonReference=[{"reference": "Condition/404"}],
        report=[{"reference": "DiagnosticReport/later"}],
        location={"reference": "Location/ward-3", "display": "Ward 3"},
    )
    read = create(client, "/v4.3.0/procedure/", body)
    assert answered(read) == expected(body, status="unknown")


def test_procedure_still_requires_a_date(client, context):
    body = {key: value for key, value in PROCEDURE.items() if key != "performedDateTime"}
    response = client.post("/v4.3.0/procedure/", json=dict(body, performedString="last week"))
    assert response.status_code == 400
    assert response.json()["issue"][0]["code"] == "required"


# --- DiagnosticReport --------------------------------------------------------------------

REPORT = {
    "resourceType": "DiagnosticReport",
    "status": "final",
    "code": {"coding": [{"system": DIAGNOSTIC, "code": "MRI-BRAIN", "display": "Brain MRI"}]},
    "subject": {"reference": "Patient/1"},
    "effectiveDateTime": "2024-01-19T10:00:00Z",
}


def test_report_people_site_and_unit_performers(client, context, engine):
    body = dict(
        REPORT,
        performer=[
            *PEOPLE,
            {"reference": "Organization/site-1"},
            {"reference": "Organization/unit-1"},
        ],
        resultsInterpreter=[{"reference": "Practitioner/pr-2"}],
    )
    read = create(client, "/v4.3.0/diagnosticreport/", body)
    performers = [*PEOPLE, body["performer"][-2]]
    performers.append({"reference": "Organization/unit-1", "display": "MRI Unit"})
    assert answered(read) == expected(body, status="unknown", performer=performers)
    assert (fact_row(engine)["department_num"], fact_row(engine)["unit_num"]) == (None, 1)
    round_trips(client, "/v4.3.0/diagnosticreport/", read)


def test_report_results_naming_missing_observations_are_stored_as_sent(client, context, engine):
    body = dict(
        REPORT,
        result=[{"reference": "Observation/999"}, {"reference": "urn:uuid:5b1c0d7e-0000"}],
        basedOn=[{"reference": "ServiceRequest/sr-1"}],
        imagingStudy=[{"reference": "ImagingStudy/later"}],
        encounter={"reference": f"Encounter/movement-{context['mvt']}"},
        identifier=[{"value": "R-1"}, {"system": "urn:pacs", "value": "P-1"}],
    )
    read = create(client, "/v4.3.0/diagnosticreport/", body)
    assert answered(read) == expected(body, status="unknown")
    row = fact_row(engine)
    assert (row["stay_num"], row["id_data_source"]) == (context["stay"], "R-1")


def test_report_effective_period(client, context, engine):
    body = {key: value for key, value in REPORT.items() if key != "effectiveDateTime"}
    body["effectivePeriod"] = {"start": "2024-01-19T10:00:00Z", "end": "2024-01-19T10:45:00Z"}
    read = create(client, "/v4.3.0/diagnosticreport/", body)
    assert answered(read) == expected(body, status="unknown")
    assert fact_row(engine)["end_date"].minute == 45


# --- MedicationRequest -------------------------------------------------------------------

PRESCRIPTION_BODY = {
    "resourceType": "MedicationRequest",
    "status": "active",
    "intent": "order",
    "subject": {"reference": "Patient/1"},
    "authoredOn": "2024-01-15T10:00:00Z",
}


def test_medication_with_only_text_makes_the_concept(client, context, engine):
    body = dict(PRESCRIPTION_BODY, medicationCodeableConcept={"text": "Paracetamol 1 g"})
    read = create(client, "/v4.3.0/medicationrequest/", body)
    concept = {
        "coding": [
            {"system": PRESCRIPTION, "code": "Paracetamol 1 g", "display": "Paracetamol 1 g"}
        ],
        "text": "Paracetamol 1 g",
    }
    changes = {"status": "unknown", "medicationCodeableConcept": concept}
    assert answered(read) == expected(body, **changes)
    found = client.get("/v4.3.0/MedicationRequest", params={"code": "Paracetamol 1 g"}).json()
    assert found["total"] == 1
    round_trips(client, "/v4.3.0/medicationrequest/", read)


def test_medication_reference_and_people_as_requester_and_performer(client, context, engine):
    body = dict(
        PRESCRIPTION_BODY,
        medicationReference={"reference": "Medication/med-1", "display": "Amoxicillin 500 mg"},
        requester={"reference": "Practitioner/pr-1", "display": "Dr. Ada Martin"},
        performer={"reference": "PractitionerRole/role-1"},
        identifier=[{"value": "RX-1"}, {"system": "urn:pharmacy", "value": "PH-7"}],
        encounter={"reference": f"Encounter/movement-{context['mvt']}"},
    )
    read = create(client, "/v4.3.0/medicationrequest/", body)
    assert answered(read) == expected(body, status="unknown")
    row = fact_row(engine)
    assert (row["department_num"], row["stay_num"]) == (None, context["stay"])
    round_trips(client, "/v4.3.0/medicationrequest/", read)


def test_medication_performer_of_another_level(client, context, engine):
    body = dict(
        PRESCRIPTION_BODY,
        medicationCodeableConcept={"coding": [{"system": PRESCRIPTION, "code": "AMOX"}]},
        performer={"reference": "Organization/site-1"},
    )
    read = create(client, "/v4.3.0/medicationrequest/", body)
    assert answered(read)["performer"] == body["performer"]
    assert fact_row(engine)["department_num"] is None


# --- lab Observation ---------------------------------------------------------------------

LAB = {
    "resourceType": "Observation",
    "status": "final",
    "code": {
        "coding": [
            {"system": BIOLOGIE, "code": "GLU", "display": "Glucose"},
            {"system": "http://loinc.org", "code": "2339-0", "display": "Glucose [Mass/volume]"},
        ]
    },
    "subject": {"reference": "Patient/1"},
    "effectiveDateTime": "2024-01-15T08:00:00Z",
}
QUANTITY = {"value": 4.2, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"}
VALUES = [
    ({"valueInteger": 7}, {"val_numeric": 7, "value_kind": "integer"}),
    ({"valueBoolean": False}, {"val_text": "false", "value_kind": "boolean"}),
    ({"valueDateTime": "2024-01-15T08:00:00Z"}, {"val_text": "2024-01-15T08:00:00Z"}),
    ({"valueTime": "08:30:00"}, {"val_text": "08:30:00", "value_kind": "time"}),
    ({"valuePeriod": {"start": "2024-01-01", "end": "2024-01-15"}}, {"value_kind": "period"}),
    (
        {"valueRange": {"low": {"value": 1, "unit": "g/L"}, "high": {"value": 2, "unit": "g/L"}}},
        {"value_kind": "range"},
    ),
    (
        {"valueRatio": {"numerator": {"value": 1}, "denominator": {"value": 128}}},
        {"value_kind": "ratio"},
    ),
    (
        {
            "valueSampledData": {
                "origin": {"value": 0, "unit": "mV"},
                "period": 10,
                "dimensions": 1,
                "data": "1 2 3 2 1",
            }
        },
        {"value_kind": "sampledData"},
    ),
    ({"valueQuantity": QUANTITY}, {"val_numeric": 4.2, "data_unit": "mmol/L"}),
]


@pytest.mark.parametrize(("value", "columns"), VALUES)
def test_lab_every_value_type(client, context, engine, value, columns):
    body = dict(LAB, **value)
    read = create(client, "/v4.3.0/observation/", body)
    assert answered(read) == expected(body)
    row = fact_row(engine)
    assert {name: row[name] for name in columns} == columns
    round_trips(client, "/v4.3.0/observation/", read)


BLOOD_PRESSURE = {
    "resourceType": "Observation",
    "status": "final",
    "category": [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                    "code": "laboratory",
                }
            ]
        }
    ],
    "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}], "text": "BP"},
    "subject": {"reference": "Patient/1"},
    "effectiveDateTime": "2024-01-15T08:00:00Z",
    "component": [
        {
            "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
            "valueQuantity": {"value": 120, "unit": "mm[Hg]"},
        },
        {
            "code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
            "valueQuantity": {"value": 80, "unit": "mm[Hg]"},
            "interpretation": [{"text": "normal"}],
        },
    ],
}


def test_lab_blood_pressure_with_only_components(client, context, engine):
    read = create(client, "/v4.3.0/observation/", BLOOD_PRESSURE)
    thesaurus = {"system": BIOLOGIE, "code": "85354-9", "display": "BP"}
    code = {"coding": [thesaurus, *BLOOD_PRESSURE["code"]["coding"]], "text": "BP"}
    assert answered(read) == expected(BLOOD_PRESSURE, code=code)
    row = fact_row(engine)
    assert (row["val_numeric"], row["value_kind"]) == (None, None)
    round_trips(client, "/v4.3.0/observation/", read)


def test_lab_reference_range_in_another_unit(client, context, engine):
    body = dict(
        LAB,
        valueQuantity=QUANTITY,
        referenceRange=[
            {"low": {"value": 70, "unit": "mg/dL"}, "high": {"value": 110, "unit": "mg/dL"}},
            {"text": "fasting", "appliesTo": [{"text": "adults"}]},
        ],
    )
    read = create(client, "/v4.3.0/observation/", body)
    assert answered(read) == expected(body)
    row = fact_row(engine)
    assert (row["lower_bound"], row["upper_bound"], row["val_numeric"]) == (None, None, 4.2)
    same_unit = dict(body, referenceRange=[{"low": {"value": 3.9, "unit": "mmol/L"}}])
    again = client.put("/v4.3.0/observation/1/", json=same_unit)
    assert answered(again.json()) == expected(same_unit)
    assert fact_row(engine)["lower_bound"] == 3.9


def test_lab_kept_loinc_coding_is_indexed_and_found(client, context, engine):
    create(client, "/v4.3.0/observation/", dict(LAB, valueQuantity=QUANTITY))
    other = copy.deepcopy(LAB)
    other["code"]["coding"] = [{"system": BIOLOGIE, "code": "NA", "display": "Sodium"}]
    create(client, "/v4.3.0/observation/", other)
    with engine.connect() as conn:
        tokens = conn.execute(
            select(fhir_token.c.row_num).where(
                fhir_token.c.table_name == "dwh_data",
                fhir_token.c.system == "http://loinc.org",
                fhir_token.c.code == "2339-0",
            )
        ).all()
    assert [token.row_num for token in tokens] == [1]
    found = client.get("/v4.3.0/Observation?code=http://loinc.org|2339-0")
    assert found.status_code == 200, found.text
    assert [entry["resource"]["id"] for entry in found.json()["entry"]] == ["1"]
    thesaurus = client.get(f"/v4.3.0/Observation?code={BIOLOGIE}|GLU").json()
    assert [entry["resource"]["id"] for entry in thesaurus["entry"]] == ["1"]


def test_lab_effective_period_and_movement(client, context, engine):
    body = {key: value for key, value in LAB.items() if key != "effectiveDateTime"}
    body.update(
        effectivePeriod={"start": "2024-01-15T08:00:00Z", "end": "2024-01-15T09:00:00Z"},
        encounter={"reference": f"Encounter/movement-{context['mvt']}"},
        performer=[PEOPLE[0], {"reference": "Organization/site-1"}],
        hasMember=[{"reference": "Observation/999"}],
        derivedFrom=[{"reference": "Observation/later"}],
        valueString="see comment",
    )
    read = create(client, "/v4.3.0/observation/", body)
    assert answered(read) == expected(body)
    row = fact_row(engine)
    assert (row["stay_num"], row["end_date"].hour, row["val_text"]) == (
        context["stay"],
        9,
        "see comment",
    )


# --- patient-data Observation ------------------------------------------------------------

VITAL = {
    "resourceType": "Observation",
    "status": "final",
    "category": [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                    "code": "vital-signs",
                }
            ]
        }
    ],
    "code": {
        "coding": [
            {"system": "http://loinc.org", "code": "85354-9", "display": "Blood pressure"},
            {"system": "http://snomed.info/sct", "code": "75367002"},
        ],
        "text": "Blood pressure",
    },
    "subject": {"reference": "Patient/1"},
    "effectiveDateTime": "2024-01-15T08:00:00Z",
}


def patient_data_row(engine) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(dwh_patient_data)).mappings().one()


def test_patient_data_blood_pressure_components(client, context, engine):
    body = dict(VITAL, component=BLOOD_PRESSURE["component"])
    read = create(client, "/v4.3.0/Observation", body)
    assert read["id"] == "patient-data-1"
    assert answered(read) == expected(body, "patient-data-1")
    assert patient_data_row(engine)["code"] == "85354-9"
    round_trips(client, "/v4.3.0/Observation/", read)


@pytest.mark.parametrize(("value", "columns"), VALUES)
def test_patient_data_every_value_type(client, context, engine, value, columns):
    body = dict(VITAL, **value)
    read = create(client, "/v4.3.0/Observation", body)
    assert answered(read) == expected(body, "patient-data-1")
    row = patient_data_row(engine)
    assert {name: row[name] for name in columns} == columns


def test_patient_data_period_movement_and_identifiers(client, context, engine):
    body = {key: value for key, value in VITAL.items() if key != "effectiveDateTime"}
    body.update(
        effectivePeriod={"start": "2024-01-15T08:00:00Z", "end": "2024-01-15T08:05:00Z"},
        encounter={"reference": f"Encounter/movement-{context['mvt']}"},
        identifier=[{"value": "V-1"}, {"system": "urn:monitor", "value": "M-1"}],
        valueInteger=72,
        performer=[PEOPLE[2]],
    )
    read = create(client, "/v4.3.0/Observation", body)
    assert answered(read) == expected(body, "patient-data-1")
    row = patient_data_row(engine)
    assert (row["stay_num"], row["id_data_source"], row["val_numeric"]) == (
        context["stay"],
        "V-1",
        72,
    )


# --- phenotype Observation -------------------------------------------------------------

COMPONENT = "urn:codoc:fhir:phenotype-component"


def test_phenotype_other_components_derived_from_and_identifiers(client, context, engine):
    document = create(client, "/v4.3.0/documentreference/", DOCUMENT)
    score = {
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "246112005"}]},
        "valueCodeableConcept": {"text": "severe"},
    }
    body = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "urn:codoc:fhir:codesystem:Phenotypes", "code": "I10"}]},
        "subject": {"reference": "Patient/1"},
        "derivedFrom": [
            {"reference": f"DocumentReference/{document['id']}"},
            {"reference": "Observation/999"},
        ],
        "identifier": [{"value": "E-1"}, {"system": "urn:nlp", "value": "N-1"}],
        "valueString": "hypertension",
        "component": [
            {"code": {"text": "negation"}, "valueBoolean": True},  # canonical form answered
            score,
            {"code": {"coding": [{"system": "http://loinc.org", "code": "phenotype"}]}},
        ],
    }
    response = client.post("/v4.3.0/Observation", json=body)
    assert response.status_code == 201, response.text
    read = client.get(response.headers["location"]).json()
    assert read["id"] == "phenotype-1"
    canonical = [
        {"code": {"coding": [{"system": COMPONENT, "code": code}]}, "valueBoolean": value}
        for code, value in (("negation", True), ("hypothesis", False), ("family", False))
    ]
    assert read["component"] == [*canonical, *body["component"][1:]]
    assert read["derivedFrom"] == body["derivedFrom"]
    assert read["identifier"][1:] == [{"value": "E-1"}, body["identifier"][1]]
    round_trips(client, "/v4.3.0/Observation/", read)


# --- DocumentReference -------------------------------------------------------------------

DOCUMENT = {
    "resourceType": "DocumentReference",
    "status": "current",
    "subject": {"reference": "Patient/1"},
    "date": "2024-01-15T10:00:00Z",
    "content": [
        {
            "attachment": {
                "contentType": "text/plain",
                "data": base64.b64encode(b"Discharge letter").decode(),
            }
        }
    ],
}


def document_row(engine) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(dwh_document)).mappings().one()


def test_document_people_devices_and_any_level_organisations_as_authors(client, context, engine):
    authors = [*PEOPLE, {"reference": "Organization/site-1"}, {"display": "Dr. Who"}]
    body = dict(DOCUMENT, author=authors)
    read = create(client, "/v4.3.0/documentreference/", body)
    answered_authors = [*PEOPLE, dict(authors[-2], display="Main site"), authors[-1]]
    content = [{"attachment": dict(DOCUMENT["content"][0]["attachment"])}]
    changes = {"author": answered_authors, "content": content}
    assert answered(read) == expected(body, **changes)
    assert document_row(engine)["author"] == "Dr. Ada Martin; Mother; Analyser; Dr. Who"
    round_trips(client, "/v4.3.0/documentreference/", read)


def test_document_relates_to_a_later_document_and_several_identifiers(client, context, engine):
    body = dict(
        DOCUMENT,
        relatesTo=[{"code": "replaces", "target": {"reference": "DocumentReference/999"}}],
        identifier=[{"value": "DOC-1"}, {"system": "urn:ehr", "value": "E-1"}],
        context={
            "encounter": [
                {"reference": f"Encounter/{context['stay']}"},
                {"reference": "Encounter/999"},
            ],
            "related": [{"reference": "ServiceRequest/sr-1"}],
        },
    )
    read = create(client, "/v4.3.0/documentreference/", body)
    for name in ("relatesTo", "context", "subject", "date", "status"):
        assert read[name] == body[name]
    assert read["identifier"] == expected(body)["identifier"]
    row = document_row(engine)
    assert (row["id_doc_source"], row["stay_num"]) == ("DOC-1", context["stay"])
