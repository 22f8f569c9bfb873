"""Observation patient data: api/observation-patient-data.md, ids shared with lab results."""

from __future__ import annotations

import copy

import pytest
from sqlalchemy import select

from codoc_fhir.warehouse.schema import dwh_data, dwh_patient_data, dwh_thesaurus_data
from tests.factories import count_rows, make_patient, make_stay

DOC_WEIGHT = {
    "resourceType": "Observation",
    "status": "final",
    "code": {
        "coding": [{"system": "http://loinc.org", "code": "29463-7", "display": "Body Weight"}]
    },
    "subject": {"reference": "Patient/1"},
    "effectiveDateTime": "2024-01-15T10:00:00Z",
    "valueQuantity": {"value": 75.5, "unit": "kg", "code": "kg"},
}
KIND_CATEGORY = {
    "coding": [
        {
            "system": "urn:codoc:fhir:observation-kind",
            "code": "patient-data",
            "display": "Patient data",
        }
    ]
}
# the "Common Use Cases" fragments of the page
USE_CASES = [
    {
        "code": {"coding": [{"code": "29463-7", "display": "Body Weight"}]},
        "valueQuantity": {"value": 75.5, "unit": "kg"},
    },
    {
        "code": {"coding": [{"code": "8302-2", "display": "Body Height"}]},
        "valueQuantity": {"value": 178, "unit": "cm"},
    },
    {
        "code": {"coding": [{"code": "883-9", "display": "ABO group"}]},
        "valueCodeableConcept": {"coding": [{"code": "A+", "display": "A positive"}]},
    },
    {
        "code": {"coding": [{"code": "ALLERGIE", "display": "Allergy"}]},
        "valueString": "Penicillin",
    },
]


def without_meta(resource: dict) -> dict:
    return {key: value for key, value in resource.items() if key != "meta"}


def fragment(patient: int, case: dict) -> dict:
    body = {
        "resourceType": "Observation",
        "status": "final",
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": "2024-01-15T10:00:00Z",
    }
    body.update(case)
    return body


@pytest.fixture
def patient(engine) -> int:
    return make_patient(engine)


def test_documented_create_keeps_the_loinc_code(client, patient, engine):
    response = client.post("/v4.3.0/observation/patient-data/", json=DOC_WEIGHT)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["id"] == "patient-data-1"
    assert created["identifier"][0] == {"use": "official", "value": "patient-data-1"}
    assert created["code"] == DOC_WEIGHT["code"]
    assert created["valueQuantity"] == {"value": 75.5, "unit": "kg", "code": "kg"}
    assert created["effectiveDateTime"] == "2024-01-15T10:00:00Z"
    assert created["category"] == [KIND_CATEGORY]
    assert response.headers["location"].endswith("/v4.3.0/Observation/patient-data-1")
    with engine.connect() as conn:
        row = conn.execute(select(dwh_patient_data)).mappings().one()
    assert (row["code_system"], row["code"], row["code_display"]) == (
        "http://loinc.org",
        "29463-7",
        "Body Weight",
    )
    assert (row["val_numeric"], row["data_unit"], row["unit_code"]) == (75.5, "kg", "kg")
    assert count_rows(engine, dwh_data) == 0
    assert count_rows(engine, dwh_thesaurus_data) == 0


@pytest.mark.parametrize("case", USE_CASES, ids=["weight", "height", "blood-group", "allergy"])
def test_use_cases_are_answered_as_sent_and_round_trip(client, patient, case):
    response = client.post("/v4.3.0/observation/patient-data/", json=fragment(patient, case))
    assert response.status_code == 201, response.text
    created = response.json()
    for name, sent in case.items():
        assert created[name] == sent
    for path in (
        "/v4.3.0/observation/patient-data/1/",
        "/v4.3.0/observation/patient-data/1",
        "/v4.3.0/Observation/patient-data-1",
        "/v4.3.0/observation/patient-data-1/",
    ):
        assert without_meta(client.get(path).json()) == without_meta(created), path
    again = client.put("/v4.3.0/observation/patient-data/1/", json=created)
    assert again.status_code == 200, again.text
    assert without_meta(again.json()) == without_meta(created)


def test_complete_patient_profile_with_bare_codes(client, engine):
    patient = make_patient(engine)
    for code, value in (
        ("29463-7", {"valueQuantity": {"value": 75.5, "unit": "kg"}}),
        ("8302-2", {"valueQuantity": {"value": 178, "unit": "cm"}}),
        ("883-9", {"valueCodeableConcept": {"coding": [{"code": "A+"}]}}),
    ):
        body = fragment(patient, {"code": {"coding": [{"code": code}]}, **value})
        response = client.post("/v4.3.0/observation/patient-data/", json=body)
        assert response.status_code == 201, response.text
        assert response.json()["code"] == {"coding": [{"code": code}]}
    assert count_rows(engine, dwh_patient_data) == 3


def test_ids_of_lab_results_and_patient_data_never_collide(client, patient):
    lab = copy.deepcopy(DOC_WEIGHT)
    lab["code"] = {"coding": [{"code": "GLU"}]}
    assert client.post("/v4.3.0/observation/", json=lab).json()["id"] == "1"
    assert client.post("/v4.3.0/observation/patient-data/", json=DOC_WEIGHT).json()["id"] == (
        "patient-data-1"
    )
    assert client.get("/v4.3.0/Observation/1").json()["code"]["coding"][0]["code"] == "GLU"
    assert client.get("/v4.3.0/observation/1/").json()["code"]["coding"][0]["code"] == "GLU"
    assert client.get("/v4.3.0/Observation/patient-data-1").json()["code"] == DOC_WEIGHT["code"]
    assert client.get("/v4.3.0/Observation/patient-data-2").status_code == 404
    assert client.get("/v4.3.0/observation/patient-data/2/").status_code == 404
    assert client.delete("/v4.3.0/Observation/1").status_code == 204
    assert client.get("/v4.3.0/observation/patient-data/1/").status_code == 200
    assert client.delete("/v4.3.0/Observation/patient-data-1").status_code == 204
    assert client.get("/v4.3.0/observation/patient-data/1/").status_code == 410


@pytest.mark.parametrize(
    "category",
    [
        [KIND_CATEGORY],
        [{"coding": [{"code": "vital-signs"}]}],
        [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "social-history",
                    }
                ]
            }
        ],
    ],
)
def test_post_on_the_generic_path_picks_patient_data_by_category(client, patient, category):
    body = dict(DOC_WEIGHT, category=category)
    for path in ("/v4.3.0/Observation", "/v4.3.0/observation/"):
        created = client.post(path, json=body).json()
        assert created["id"].startswith("patient-data-")
        assert created["category"] == category


def test_post_without_category_is_a_lab_result(client, patient):
    created = client.post("/v4.3.0/Observation", json=DOC_WEIGHT).json()
    assert created["id"] == "1"
    assert created["code"]["coding"][0]["system"] == "urn:codoc:fhir:codesystem:Biologie"


def test_an_answer_posted_back_creates_patient_data_again(client, patient):
    created = client.post("/v4.3.0/observation/patient-data/", json=DOC_WEIGHT).json()
    copy_body = {key: value for key, value in created.items() if key not in ("id", "meta")}
    again = client.post("/v4.3.0/Observation", json=copy_body).json()
    assert again["id"] == "patient-data-2"
    assert without_meta(again) | {"id": "x", "identifier": []} == without_meta(created) | {
        "id": "x",
        "identifier": [],
    }


def test_encounter_and_kept_elements(client, patient, engine):
    stay = make_stay(engine, patient_num=patient)
    body = dict(DOC_WEIGHT, encounter={"reference": f"Encounter/{stay}"})
    body["note"] = [{"text": "weighed without shoes"}]
    body["identifier"] = [{"value": "W-1"}]
    created = client.post("/v4.3.0/observation/patient-data/", json=body).json()
    assert created["encounter"] == {"reference": f"Encounter/{stay}"}
    assert created["note"] == body["note"]
    assert created["identifier"][1] == {"value": "W-1"}


def test_patch_changes_the_value(client, patient):
    client.post("/v4.3.0/observation/patient-data/", json=DOC_WEIGHT)
    response = client.patch(
        "/v4.3.0/Observation/patient-data-1", json={"valueQuantity": {"value": 74, "unit": "kg"}}
    )
    assert response.status_code == 200, response.text
    assert response.json()["valueQuantity"] == {"value": 74, "unit": "kg"}
    assert response.json()["meta"]["versionId"] == "2"


def _changed(**changes) -> dict:
    body = copy.deepcopy(DOC_WEIGHT)
    body.update(changes)
    return {key: value for key, value in body.items() if value is not None}


@pytest.mark.parametrize(
    ("body", "code", "needle"),
    [
        (_changed(status=None), "required", "status"),
        (_changed(code=None), "required", "code"),
        (_changed(code={"coding": [{"display": "Body Weight"}]}), "required", "code"),
        (_changed(subject=None), "required", "subject"),
        (_changed(effectiveDateTime=None), "required", "effectiveDateTime"),
        (_changed(status="bogus"), "invalid", "status"),
        (_changed(effectiveDateTime="2024-01-15T10:00:00"), "invalid", "date"),
        (_changed(subject={"reference": "Patient/999"}), "not-found", "Patient with ID 999"),
        (_changed(encounter={"reference": "Encounter/999"}), "not-found", "Stay with ID 999"),
        (_changed(code={"coding": [{"code": "x" * 101}]}), "invalid", "too long"),
        (_changed(resourceType="Patient"), "invalid", "resourceType"),
    ],
)
def test_bad_input_is_a_400_outcome_and_stores_nothing(client, patient, engine, body, code, needle):
    response = client.post("/v4.3.0/observation/patient-data/", json=body)
    assert response.status_code == 400, response.text
    issue = response.json()["issue"][0]
    assert issue["code"] == code
    assert needle in issue["diagnostics"]
    assert count_rows(engine, dwh_patient_data) == 0


def test_search_spans_lab_results_and_patient_data(client, patient):
    client.post("/v4.3.0/observation/patient-data/", json=DOC_WEIGHT)
    lab = dict(DOC_WEIGHT, code={"coding": [{"code": "GLU"}]})
    lab["valueQuantity"] = {"value": 95, "unit": "mg/dL"}
    client.post("/v4.3.0/observation/", json=lab)

    def found(query: str) -> list[str]:
        bundle = client.get(f"/v4.3.0/Observation?{query}").json()
        return sorted(entry["resource"]["id"] for entry in bundle.get("entry", []))

    assert found("subject=Patient/1") == ["1", "patient-data-1"]
    assert found("code=http://loinc.org|29463-7") == ["patient-data-1"]
    assert found("code=GLU") == ["1"]
    assert found("value-quantity=gt80") == ["1"]
    assert found("value-quantity=75.5||kg") == ["patient-data-1"]
