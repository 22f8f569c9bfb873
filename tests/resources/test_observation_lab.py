"""Observation (lab results): api/observation.md and the guides that post lab results."""

from __future__ import annotations

import copy

import pytest
from sqlalchemy import select

from codoc_fhir.warehouse.schema import dwh_data, dwh_thesaurus_data
from tests.factories import count_rows, make_patient, make_stay

DOC_OBSERVATION = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"coding": [{"code": "GLU"}]},
    "subject": {"reference": "Patient/1"},
    "effectiveDateTime": "2024-01-21T07:00:00Z",
    "valueQuantity": {"value": 95, "unit": "mg/dL"},
}
UCUM_QUANTITY = {
    "value": 120,
    "unit": "mmHg",
    "system": "http://unitsofmeasure.org",
    "code": "mm[Hg]",
}
SNOMED_POSITIVE = {
    "coding": [{"system": "http://snomed.info/sct", "code": "10828004", "display": "Positive"}]
}


def stored_row(engine, num: int):
    with engine.connect() as conn:
        return conn.execute(select(dwh_data).where(dwh_data.c.data_num == num)).mappings().one()


def with_value(**value) -> dict:
    body = {key: item for key, item in DOC_OBSERVATION.items() if key != "valueQuantity"}
    body.update(value)
    return body


def without_meta(resource: dict) -> dict:
    return {key: value for key, value in resource.items() if key != "meta"}


@pytest.fixture
def patient(engine) -> int:
    return make_patient(engine)


@pytest.fixture
def stay(engine, patient) -> int:
    return make_stay(engine, patient_num=patient)


def test_documented_create_answers_the_lab_result(client, patient, engine):
    response = client.post("/v4.3.0/observation/", json=DOC_OBSERVATION)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["id"] == "1"
    assert created["identifier"] == [{"use": "official", "value": "1"}]
    assert created["status"] == "final"
    assert created["code"] == {
        "coding": [
            {"system": "urn:codoc:fhir:codesystem:Biologie", "code": "GLU", "display": "GLU"}
        ]
    }
    assert created["subject"] == {"reference": "Patient/1"}
    assert created["effectiveDateTime"] == "2024-01-21T07:00:00Z"
    assert created["valueQuantity"] == {"value": 95, "unit": "mg/dL"}
    assert response.headers["location"].endswith("/v4.3.0/Observation/1")
    row = stored_row(engine, 1)
    assert (row["thesaurus_code"], row["val_numeric"], row["data_unit"]) == (
        "Biologie",
        95,
        "mg/dL",
    )
    assert (row["data_status"], row["value_kind"]) == ("final", "quantity")


def test_complete_blood_test_use_case(client, engine):
    patient = make_patient(engine)
    results = [("HEMOGLOBIN", 14.5, "g/dL"), ("LEUKOCYTES", 7800, "/mm3"), ("GLUCOSE", 0.95, "g/L")]
    for code, value, unit in results:
        body = {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"code": code}]},
            "subject": {"reference": f"Patient/{patient}"},
            "effectiveDateTime": "2024-01-15T08:30:00Z",
            "valueQuantity": {"value": value, "unit": unit},
        }
        created = client.post("/v4.3.0/observation/", json=body).json()
        read = client.get(f"/v4.3.0/observation/{created['id']}/").json()
        assert read["valueQuantity"] == {"value": value, "unit": unit}
        assert read["code"]["coding"][0]["code"] == code
    assert count_rows(engine, dwh_data) == 3


@pytest.mark.parametrize(
    "value",
    [
        {"valueQuantity": UCUM_QUANTITY},
        {"valueQuantity": {"value": 4.2, "comparator": "<", "unit": "mmol/L"}},
        {"valueString": "Positive"},
        {"valueCodeableConcept": SNOMED_POSITIVE},
        {"valueCodeableConcept": {"text": "Positive"}},
        {"valueCodeableConcept": {"coding": [{"code": "POS"}], "text": "Positive"}},
        {
            "valueCodeableConcept": {
                "coding": [
                    {"system": "http://snomed.info/sct", "code": "10828004", "display": "Positive"},
                    {"system": "urn:lab:local", "code": "P"},
                ],
                "text": "positive result",
            }
        },
    ],
)
def test_each_value_variant_round_trips(client, patient, value):
    created = client.post("/v4.3.0/observation/", json=with_value(**value)).json()
    for name, sent in value.items():
        assert created[name] == sent
    read = client.get("/v4.3.0/Observation/1").json()
    again = client.put("/v4.3.0/observation/1/", json=read)
    assert again.status_code == 200, again.text
    assert without_meta(client.get("/v4.3.0/observation/1/").json()) == without_meta(read)
    assert again.json()["meta"]["versionId"] == "2"


def test_ucum_value_survives_create_read_put_read(client, patient, engine):
    body = with_value(valueQuantity=UCUM_QUANTITY)
    body["referenceRange"] = [
        {"low": {"value": 90, "unit": "mmHg"}, "high": {"value": 140, "unit": "mmHg"}}
    ]
    created = client.post("/v4.3.0/observation/", json=body).json()
    assert created["valueQuantity"] == UCUM_QUANTITY
    assert created["referenceRange"] == body["referenceRange"]  # as sent (CONTRACT 9)
    row = stored_row(engine, 1)
    assert (row["unit_system"], row["unit_code"]) == ("http://unitsofmeasure.org", "mm[Hg]")
    assert (row["lower_bound"], row["upper_bound"]) == (90, 140)
    read = client.get("/v4.3.0/observation/1/").json()
    client.put("/v4.3.0/observation/1/", json=read)
    assert without_meta(client.get("/v4.3.0/observation/1/").json()) == without_meta(created)


def test_elements_without_column_are_kept_as_sent(client, patient):
    body = dict(DOC_OBSERVATION)
    body["interpretation"] = [{"coding": [{"code": "H", "display": "High"}]}]
    body["note"] = [{"text": "Fasting sample"}]
    body["category"] = [{"coding": [{"code": "laboratory"}]}]
    body["referenceRange"] = [{"low": {"value": 70}, "high": {"value": 90}, "text": "fasting"}]
    body["identifier"] = [{"system": "urn:lab", "value": "LAB-42"}]
    created = client.post("/v4.3.0/Observation", json=body).json()
    for name in ("interpretation", "note", "category"):
        assert created[name] == body[name]
    assert created["identifier"][1] == {"system": "urn:lab", "value": "LAB-42"}
    assert created["referenceRange"] == body["referenceRange"]  # no unit added (CONTRACT 9)


def test_guide_patient_record_lab_results(client, engine):
    patient = make_patient(engine)
    stay = make_stay(engine, patient_num=patient)
    sent = [
        ({"coding": [{"code": "HEMOGLOBIN", "display": "Hemoglobin"}]}, 13.5, "g/dL"),
        ({"coding": [{"code": "GLUCOSE", "display": "Blood Glucose"}]}, 1.05, "g/L"),
        ({"coding": [{"code": "HEMOGLOBIN"}]}, 13.5, "g/dL"),  # the complete script
    ]
    for code, value, unit in sent:
        response = client.post(
            "/v4.3.0/observation/",
            json={
                "resourceType": "Observation",
                "status": "final",
                "code": code,
                "subject": {"reference": f"Patient/{patient}"},
                "encounter": {"reference": f"Encounter/{stay}"},
                "effectiveDateTime": "2024-11-05T10:00:00Z",
                "valueQuantity": {"value": value, "unit": unit},
            },
        )
        assert response.status_code == 201, response.text
        assert response.json()["encounter"] == {"reference": f"Encounter/{stay}"}
    # the concept keeps the label it was created with
    assert client.get("/v4.3.0/observation/3/").json()["code"]["coding"][0]["display"] == (
        "Hemoglobin"
    )
    assert count_rows(engine, dwh_thesaurus_data) == 2


def test_guide_patient_journey_icu_results(client, engine):
    patient = make_patient(engine, ipp="IPP789456")
    stay = make_stay(engine, patient_num=patient)
    for code, display, value, unit in (
        ("TROPONINE", "Troponin Ic", 15000, "ng/L"),
        ("BNP", "BNP", 850, "pg/mL"),
    ):
        response = client.post(
            "/v4.3.0/observation/",
            json={
                "resourceType": "Observation",
                "status": "final",
                "code": {"coding": [{"code": code, "display": display}]},
                "subject": {"reference": f"Patient/{patient}"},
                "encounter": {"reference": f"Encounter/{stay}"},
                "effectiveDateTime": "2024-11-05T21:00:00Z",
                "valueQuantity": {"value": value, "unit": unit},
            },
        )
        assert response.status_code == 201
        assert response.json()["valueQuantity"] == {"value": value, "unit": unit}


def test_guide_custom_thesaurus_observation_keeps_the_sent_coding(client, patient):
    sent_coding = {
        "system": "http://codoc.com/fhir/codesystem/COVID_SYMPTOMES",
        "code": "FIEVRE",
        "display": "Fever > 38°C",
    }
    body = dict(DOC_OBSERVATION, code={"coding": [sent_coding]})
    body["valueQuantity"] = {"value": 39.2, "unit": "°C"}
    created = client.post("/v4.3.0/observation/", json=body).json()
    assert created["code"]["coding"][0]["code"] == "FIEVRE"
    assert created["code"]["coding"][1] == sent_coding
    read = client.get("/v4.3.0/observation/1/").json()
    assert "COVID_SYMPTOMES" in read["code"]["coding"][1]["system"]
    client.put("/v4.3.0/observation/1/", json=read)
    assert client.get("/v4.3.0/observation/1/").json()["code"] == created["code"]


def test_thesaurus_is_configurable(make_client, engine):
    make_patient(engine)
    labo = make_client(THESAURUS_CODE_OBSERVATION="Labo")
    created = labo.post("/v4.3.0/observation/", json=DOC_OBSERVATION).json()
    assert created["code"]["coding"][0]["system"] == "urn:codoc:fhir:codesystem:Labo"
    assert stored_row(engine, 1)["thesaurus_code"] == "Labo"
    assert make_client().get("/v4.3.0/observation/1/").status_code == 404


def test_patch_switches_the_value_type(client, patient, engine):
    client.post("/v4.3.0/observation/", json=DOC_OBSERVATION)
    response = client.patch("/v4.3.0/observation/1/", json={"valueString": "haemolysed"})
    assert response.status_code == 200, response.text
    assert response.json()["valueString"] == "haemolysed"
    assert "valueQuantity" not in response.json()
    row = stored_row(engine, 1)
    assert (row["val_numeric"], row["data_unit"], row["value_kind"]) == (None, None, "string")


def test_delete(client, patient, engine):
    client.post("/v4.3.0/observation/", json=DOC_OBSERVATION)
    assert client.delete("/v4.3.0/observation/1/").status_code == 204
    assert client.get("/v4.3.0/Observation/1").status_code == 410
    assert count_rows(engine, dwh_data) == 0


def _without(field: str) -> dict:
    return {key: value for key, value in DOC_OBSERVATION.items() if key != field}


def _changed(**changes) -> dict:
    body = copy.deepcopy(DOC_OBSERVATION)
    body.update(changes)
    return body


@pytest.mark.parametrize(
    ("body", "code", "needle"),
    [
        (_without("status"), "required", "status"),
        (_without("code"), "required", "code"),
        (_without("subject"), "required", "subject"),
        (_without("effectiveDateTime"), "required", "effectiveDateTime"),
        (_changed(status="corrected"), "invalid", "status"),
        (_changed(effectiveDateTime="21/01/2024"), "invalid", "date"),
        (_changed(valueString="95 mg/dL"), "invalid", "value"),
        (_changed(valueBoolean=True), "invalid", "valueBoolean"),
        (_changed(valueQuantity={"value": 95, "comparator": "~"}), "invalid", "comparator"),
        (_changed(valueQuantity={"value": 95, "unit": "u" * 26}), "invalid", "too long"),
        (_changed(subject={"reference": "Patient/999"}), "not-found", "Patient with ID 999"),
        (_changed(encounter={"reference": "Encounter/999"}), "not-found", "Stay with ID 999"),
        (
            _changed(code={"coding": [{"system": "urn:codoc:fhir:codesystem:Acte", "code": "X"}]}),
            "invalid",
            "Biologie",
        ),
    ],
)
def test_bad_input_is_a_400_outcome_and_stores_nothing(client, patient, engine, body, code, needle):
    response = client.post("/v4.3.0/observation/", json=body)
    assert response.status_code == 400, response.text
    issue = response.json()["issue"][0]
    assert issue["code"] == code
    assert needle in issue["diagnostics"]
    assert count_rows(engine, dwh_data) == 0
    assert count_rows(engine, dwh_thesaurus_data) == 0


def test_bad_put_leaves_the_stored_result(client, patient, engine):
    client.post("/v4.3.0/observation/", json=DOC_OBSERVATION)
    response = client.put("/v4.3.0/observation/1/", json=_changed(status="bogus"))
    assert response.status_code == 400
    read = client.get("/v4.3.0/observation/1/").json()
    assert read["meta"]["versionId"] == "1"
    assert read["status"] == "final"
