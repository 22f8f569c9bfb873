"""DiagnosticReport: api/diagnosticreport.md end to end."""

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

DOC_REPORT = {
    "resourceType": "DiagnosticReport",
    "status": "final",
    "code": {"coding": [{"code": "MRI-BRAIN", "display": "Brain MRI"}]},
    "subject": {"reference": "Patient/1"},
    "encounter": {"reference": "Encounter/2"},
    "effectiveDateTime": "2024-01-19T10:00:00Z",
    "issued": "2024-01-19T15:30:00Z",
    "conclusion": "No acute intracranial abnormality. Normal brain structure.",
    "performer": [{"reference": "Organization/department-2"}],
}


def without_meta(resource: dict) -> dict:
    return {key: value for key, value in resource.items() if key != "meta"}


@pytest.fixture
def context(engine) -> dict[str, int]:
    site = make_site(engine)
    make_department(engine, site_num=site)
    department = make_department(engine, code="RAD", name="Radiology", site_num=site)
    unit = make_unit(engine, department_num=department, code="MRI", name="MRI Unit")
    patient = make_patient(engine)
    make_stay(engine, patient_num=patient)
    make_stay(engine, patient_num=patient)
    return {"patient": patient, "department": department, "unit": unit}


def test_documented_create(client, context, engine):
    response = client.post("/v4.3.0/diagnosticreport/", json=DOC_REPORT)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["id"] == "1"
    assert created["status"] == "unknown"
    assert created["code"]["coding"] == [
        {
            "system": "urn:codoc:fhir:codesystem:Diagnostic",
            "code": "MRI-BRAIN",
            "display": "Brain MRI",
        }
    ]
    for name in ("subject", "encounter", "effectiveDateTime", "issued", "conclusion"):
        assert created[name] == DOC_REPORT[name]
    assert created["performer"] == [
        {"reference": "Organization/department-2", "display": "Radiology"}
    ]
    assert response.headers["location"].endswith("/v4.3.0/DiagnosticReport/1")
    with engine.connect() as conn:
        row = conn.execute(select(dwh_data)).mappings().one()
    assert row["thesaurus_code"] == "Diagnostic"
    assert row["val_text"] == DOC_REPORT["conclusion"]
    assert row["department_num"] == 2


def test_get_put_round_trip_and_read_paths(client, context):
    created = client.post("/v4.3.0/diagnosticreport/", json=DOC_REPORT).json()
    for path in ("/v4.3.0/diagnosticreport/1/", "/v4.3.0/DiagnosticReport/1"):
        assert without_meta(client.get(path).json()) == without_meta(created)
    response = client.put("/v4.3.0/DiagnosticReport/1", json=created)
    assert response.status_code == 200, response.text
    assert without_meta(response.json()) == without_meta(created)
    assert response.json()["meta"]["versionId"] == "2"


def test_department_and_unit_performers_and_kept_elements(client, context):
    body = dict(DOC_REPORT)
    body["performer"] = [
        {"reference": "Organization/department-2"},
        {"reference": "Organization/unit-1"},
    ]
    body["category"] = [{"coding": [{"code": "RAD", "display": "Radiology"}]}]
    body["conclusionCode"] = [
        {"coding": [{"system": "http://snomed.info/sct", "code": "17621005"}]}
    ]
    created = client.post("/v4.3.0/diagnosticreport/", json=body).json()
    assert [item["reference"] for item in created["performer"]] == [
        "Organization/department-2",
        "Organization/unit-1",
    ]
    assert created["category"] == body["category"]
    assert created["conclusionCode"] == body["conclusionCode"]


def test_patch_the_conclusion(client, context):
    client.post("/v4.3.0/diagnosticreport/", json=DOC_REPORT)
    response = client.patch("/v4.3.0/diagnosticreport/1/", json={"conclusion": "Small lesion."})
    assert response.status_code == 200, response.text
    assert response.json()["conclusion"] == "Small lesion."
    assert response.json()["issued"] == DOC_REPORT["issued"]


def test_thesaurus_is_configurable(make_client, engine, context):
    imaging = make_client(THESAURUS_CODE_DIAGNOSTIC="Imagerie")
    created = imaging.post("/v4.3.0/diagnosticreport/", json=DOC_REPORT).json()
    assert created["code"]["coding"][0]["system"] == "urn:codoc:fhir:codesystem:Imagerie"
    assert make_client().get("/v4.3.0/diagnosticreport/1/").status_code == 404


def _changed(**changes) -> dict:
    body = copy.deepcopy(DOC_REPORT)
    body.update(changes)
    return {key: value for key, value in body.items() if value is not None}


@pytest.mark.parametrize(
    ("body", "code", "needle"),
    [
        (_changed(status=None), "required", "status"),
        (_changed(code=None), "required", "code"),
        (_changed(subject=None), "required", "subject"),
        (_changed(effectiveDateTime=None), "required", "effectiveDateTime"),
        (_changed(status="bogus"), "invalid", "status"),
        (_changed(issued="2024-01-19"), "invalid", "issued"),
        (_changed(effectiveDateTime="19/01/2024"), "invalid", "date"),
        (_changed(performer=[{"reference": "Organization/unit-7"}]), "not-found", "Unit with ID 7"),
        (_changed(subject={"reference": "Patient/999"}), "not-found", "Patient with ID 999"),
        (_changed(encounter={"reference": "Encounter/999"}), "not-found", "Stay with ID 999"),
        (_changed(conclusion="x" * 10001), "invalid", "too long"),
    ],
)
def test_bad_input_is_a_400_outcome_and_stores_nothing(client, context, engine, body, code, needle):
    response = client.post("/v4.3.0/diagnosticreport/", json=body)
    assert response.status_code == 400, response.text
    issue = response.json()["issue"][0]
    assert issue["code"] == code
    assert needle in issue["diagnostics"]
    assert count_rows(engine, dwh_data) == 0
    assert count_rows(engine, dwh_thesaurus_data) == 0


def test_search_by_date_and_performer(client, context):
    client.post("/v4.3.0/diagnosticreport/", json=DOC_REPORT)

    def total(query: str) -> int:
        return client.get(f"/v4.3.0/DiagnosticReport?{query}").json()["total"]

    assert total("date=2024-01-19") == 1
    assert total("date=2024-01-20") == 0
    assert total("performer=Organization/department-2") == 1
    assert total("performer=Organization/department-1") == 0
