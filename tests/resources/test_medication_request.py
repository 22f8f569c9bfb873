"""MedicationRequest: api/medicationrequest.md end to end, dosage round trips."""

from __future__ import annotations

import copy

import pytest
from sqlalchemy import select

from codoc_fhir.warehouse.schema import dwh_data, dwh_thesaurus_data
from tests.factories import (
    count_rows,
    make_department,
    make_patient,
    make_site,
    make_stay,
    make_unit,
)

DOC_PRESCRIPTION = {
    "resourceType": "MedicationRequest",
    "status": "active",
    "intent": "order",
    "medicationCodeableConcept": {"coding": [{"code": "AMOX500", "display": "Amoxicillin 500mg"}]},
    "subject": {"reference": "Patient/1"},
    "encounter": {"reference": "Encounter/2"},
    "authoredOn": "2024-01-15T09:00:00Z",
    "dosageInstruction": [
        {
            "doseAndRate": [{"doseQuantity": {"value": 500, "unit": "mg"}}],
            "timing": {"repeat": {"frequency": 3, "period": 1, "periodUnit": "d"}},
            "route": {"text": "Oral"},
        }
    ],
    "dispenseRequest": {
        "validityPeriod": {"start": "2024-01-15T00:00:00Z", "end": "2024-01-22T00:00:00Z"}
    },
    "performer": {"reference": "Organization/department-2"},
}
RICH_DOSAGE = [
    {
        "sequence": 1,
        "text": "500 mg three times a day with meals",
        "additionalInstruction": [{"text": "with meals"}],
        "timing": {
            "repeat": {
                "frequency": 3,
                "period": 1,
                "periodUnit": "d",
                "boundsDuration": {"value": 7, "unit": "d"},
            }
        },
        "asNeededBoolean": False,
        "route": {
            "coding": [
                {"system": "http://snomed.info/sct", "code": "26643006", "display": "Oral route"}
            ]
        },
        "doseAndRate": [
            {
                "type": {"coding": [{"code": "ordered"}]},
                "doseQuantity": {
                    "value": 500,
                    "unit": "mg",
                    "system": "http://unitsofmeasure.org",
                    "code": "mg",
                },
            }
        ],
    },
    {"sequence": 2, "text": "then 250 mg twice a day"},
]


def without_meta(resource: dict) -> dict:
    return {key: value for key, value in resource.items() if key != "meta"}


@pytest.fixture
def context(engine) -> dict[str, int]:
    """Patient 1 with stays 1 and 2, departments 1 and 2, unit 1: the page's ids."""
    site = make_site(engine)
    make_department(engine, site_num=site)
    department = make_department(engine, code="INF", name="Infectious Diseases", site_num=site)
    patient = make_patient(engine)
    make_stay(engine, patient_num=patient)
    stay = make_stay(engine, patient_num=patient)
    unit = make_unit(engine, department_num=department)
    return {"patient": patient, "stay": stay, "department": department, "unit": unit}


def test_documented_create(client, context, engine):
    response = client.post("/v4.3.0/medicationrequest/", json=DOC_PRESCRIPTION)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["id"] == "1"
    assert (created["status"], created["intent"]) == ("unknown", "order")
    assert created["medicationCodeableConcept"] == {
        "coding": [
            {
                "system": "urn:codoc:fhir:codesystem:Prescription",
                "code": "AMOX500",
                "display": "Amoxicillin 500mg",
            }
        ]
    }
    assert created["encounter"] == {"reference": "Encounter/2"}
    assert created["authoredOn"] == "2024-01-15T09:00:00Z"
    assert created["dosageInstruction"] == DOC_PRESCRIPTION["dosageInstruction"]
    assert created["dispenseRequest"] == DOC_PRESCRIPTION["dispenseRequest"]
    assert created["performer"] == {
        "reference": "Organization/department-2",
        "display": "Infectious Diseases",
    }
    assert response.headers["location"].endswith("/v4.3.0/MedicationRequest/1")
    with engine.connect() as conn:
        row = conn.execute(select(dwh_data)).mappings().one()
    assert row["thesaurus_code"] == "Prescription"
    assert (row["val_numeric"], row["data_unit"]) == (500, "mg")
    assert (row["frequency"], row["period"], row["period_unit"], row["route"]) == (
        3,
        1,
        "d",
        "Oral",
    )
    assert row["department_num"] == 2
    assert row["validity_start"] is not None and row["validity_end"] is not None


def test_dosage_survives_create_read_put_read(client, context):
    created = client.post("/v4.3.0/medicationrequest/", json=DOC_PRESCRIPTION).json()
    read = client.get("/v4.3.0/medicationrequest/1/").json()
    assert without_meta(read) == without_meta(created)
    response = client.put("/v4.3.0/MedicationRequest/1", json=read)
    assert response.status_code == 200, response.text
    again = client.get("/v4.3.0/MedicationRequest/1").json()
    assert without_meta(again) == without_meta(created)
    assert again["meta"]["versionId"] == "2"


def test_a_rich_dosage_is_answered_as_sent(client, context, engine):
    body = dict(DOC_PRESCRIPTION, dosageInstruction=RICH_DOSAGE)
    body["medicationCodeableConcept"] = {
        "coding": [
            {"code": "AMOX500", "display": "Amoxicillin 500mg"},
            {"system": "http://www.whocc.no/atc", "code": "J01CA04"},
        ]
    }
    created = client.post("/v4.3.0/medicationrequest/", json=body).json()
    assert created["dosageInstruction"] == RICH_DOSAGE
    assert created["medicationCodeableConcept"]["coding"][1] == {
        "system": "http://www.whocc.no/atc",
        "code": "J01CA04",
    }
    with engine.connect() as conn:
        row = conn.execute(select(dwh_data)).mappings().one()
    assert row["route"] == "Oral route"
    assert row["daily_details"] == "500 mg three times a day with meals"
    assert row["unit_system"] == "http://unitsofmeasure.org"
    client.put("/v4.3.0/medicationrequest/1/", json=created)
    assert without_meta(client.get("/v4.3.0/medicationrequest/1/").json()) == without_meta(created)


def test_put_changes_the_dosage_columns(client, context, engine):
    client.post("/v4.3.0/medicationrequest/", json=DOC_PRESCRIPTION)
    changed = copy.deepcopy(DOC_PRESCRIPTION)
    changed["dosageInstruction"][0]["timing"]["repeat"] = {
        "frequency": 2,
        "period": 12,
        "periodUnit": "h",
    }
    changed["dosageInstruction"][0]["route"] = {"text": "IV"}
    changed.pop("dispenseRequest")
    changed["performer"] = {"reference": "Organization/unit-1"}
    answer = client.put("/v4.3.0/medicationrequest/1/", json=changed).json()
    assert answer["dosageInstruction"] == changed["dosageInstruction"]
    assert "dispenseRequest" not in answer
    assert answer["performer"]["reference"] == "Organization/unit-1"
    with engine.connect() as conn:
        row = conn.execute(select(dwh_data)).mappings().one()
    assert (row["frequency"], row["period"], row["period_unit"], row["route"]) == (2, 12, "h", "IV")
    assert (row["validity_start"], row["department_num"], row["unit_num"]) == (None, None, 1)


def test_minimal_prescription(client, context):
    body = {
        key: DOC_PRESCRIPTION[key]
        for key in (
            "resourceType",
            "status",
            "intent",
            "medicationCodeableConcept",
            "subject",
            "authoredOn",
        )
    }
    created = client.post("/v4.3.0/medicationrequest/", json=body).json()
    for absent in ("dosageInstruction", "dispenseRequest", "performer", "encounter"):
        assert absent not in created


def test_thesaurus_is_configurable_and_scoped(make_client, engine, context):
    atc = make_client(THESAURUS_CODE_MEDICATION="ATC")
    created = atc.post("/v4.3.0/medicationrequest/", json=DOC_PRESCRIPTION).json()
    assert (
        created["medicationCodeableConcept"]["coding"][0]["system"]
        == "urn:codoc:fhir:codesystem:ATC"
    )
    assert make_client().get("/v4.3.0/medicationrequest/1/").status_code == 404
    assert atc.get("/v4.3.0/medicationrequest/1/").status_code == 200


def _changed(**changes) -> dict:
    body = copy.deepcopy(DOC_PRESCRIPTION)
    body.update(changes)
    return {key: value for key, value in body.items() if value is not None}


def _dosage(**repeat) -> dict:
    body = copy.deepcopy(DOC_PRESCRIPTION)
    body["dosageInstruction"][0]["timing"]["repeat"].update(repeat)
    return body


@pytest.mark.parametrize(
    ("body", "code", "needle"),
    [
        (_changed(status=None), "required", "status"),
        (_changed(intent=None), "required", "intent"),
        (_changed(medicationCodeableConcept=None), "required", "medicationCodeableConcept"),
        (_changed(authoredOn=None), "required", "authoredOn"),
        (_changed(subject=None), "required", "subject"),
        (_changed(status="bogus"), "invalid", "status"),
        (_changed(intent="bogus"), "invalid", "intent"),
        (_changed(authoredOn="15/01/2024"), "invalid", "date"),
        (_dosage(periodUnit="day"), "invalid", "periodUnit"),
        (_dosage(period=0.5), "invalid", "period"),
        (_dosage(frequency=2**40), "invalid", "frequency"),
        (
            _changed(
                dispenseRequest={"validityPeriod": {"start": "2024-01-22", "end": "2024-01-15"}}
            ),
            "invalid",
            "before its start",
        ),
        (
            _changed(performer={"reference": "Organization/department-9"}),
            "not-found",
            "Department with ID 9",
        ),
        (_changed(subject={"reference": "Patient/999"}), "not-found", "Patient with ID 999"),
        (_changed(encounter={"reference": "Encounter/999"}), "not-found", "Stay with ID 999"),
    ],
)
def test_bad_input_is_a_400_outcome_and_stores_nothing(client, context, engine, body, code, needle):
    response = client.post("/v4.3.0/medicationrequest/", json=body)
    assert response.status_code == 400, response.text
    issue = response.json()["issue"][0]
    assert issue["code"] == code
    assert needle in issue["diagnostics"]
    assert count_rows(engine, dwh_data) == 0
    assert count_rows(engine, dwh_thesaurus_data) == 0


def test_route_too_long_for_its_column_is_400(client, context, engine):
    body = copy.deepcopy(DOC_PRESCRIPTION)
    body["dosageInstruction"][0]["route"] = {"text": "r" * 51}
    response = client.post("/v4.3.0/medicationrequest/", json=body)
    assert response.status_code == 400
    assert count_rows(engine, dwh_data) == 0


def test_search_by_patient_code_and_authoredon(client, context):
    client.post("/v4.3.0/medicationrequest/", json=DOC_PRESCRIPTION)

    def total(query: str) -> int:
        return client.get(f"/v4.3.0/MedicationRequest?{query}").json()["total"]

    assert total("patient=Patient/1") == 1
    assert total("code=AMOX500") == 1
    assert total("authoredon=ge2024-01-15") == 1
    assert total("authoredon=lt2024-01-15") == 0
