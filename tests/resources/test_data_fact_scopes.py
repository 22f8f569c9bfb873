"""The dwh_data resources share one table: each sees only its own thesaurus's rows."""

from __future__ import annotations

import pytest

from tests.factories import make_patient

SUBJECT = {"reference": "Patient/1"}
BODIES = {
    "procedure": {
        "resourceType": "Procedure",
        "status": "completed",
        "code": {"coding": [{"code": "COLO001"}]},
        "subject": SUBJECT,
        "performedDateTime": "2024-01-15T14:00:00Z",
    },
    "observation": {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"code": "GLU"}]},
        "subject": SUBJECT,
        "effectiveDateTime": "2024-01-21T07:00:00Z",
        "valueQuantity": {"value": 95, "unit": "mg/dL"},
    },
    "medicationrequest": {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"coding": [{"code": "AMOX500"}]},
        "subject": SUBJECT,
        "authoredOn": "2024-01-15T09:00:00Z",
    },
    "diagnosticreport": {
        "resourceType": "DiagnosticReport",
        "status": "final",
        "code": {"coding": [{"code": "MRI-BRAIN"}]},
        "subject": SUBJECT,
        "effectiveDateTime": "2024-01-19T10:00:00Z",
    },
    "condition": {
        "resourceType": "Condition",
        "code": {"coding": [{"code": "I10"}]},
        "subject": SUBJECT,
        "onsetDateTime": "2024-01-20T10:00:00Z",
    },
}
STANDARD = {
    "procedure": "Procedure",
    "observation": "Observation",
    "medicationrequest": "MedicationRequest",
    "diagnosticreport": "DiagnosticReport",
    "condition": "Condition",
}


@pytest.fixture
def facts(client, engine) -> dict[str, str]:
    """One row of each resource in the shared dwh_data table, five distinct keys (not
    always 1 to 5: on PostgreSQL a process takes the keys of its fast creates in blocks,
    docs/HISTORY.md "Deleted resources and ids")."""
    make_patient(engine)
    ids = {}
    for path, body in BODIES.items():
        response = client.post(f"/v4.3.0/{path}/", json=body)
        assert response.status_code == 201, response.text
        ids[path] = response.json()["id"]
    assert len(set(ids.values())) == len(BODIES)
    return ids


def test_a_row_is_only_found_under_its_own_resource(client, facts):
    for owner, ident in facts.items():
        for path, type_name in STANDARD.items():
            expected = 200 if path == owner else 404
            for url in (f"/v4.3.0/{path}/{ident}/", f"/v4.3.0/{type_name}/{ident}"):
                response = client.get(url)
                assert response.status_code == expected, url
                if expected == 404:
                    assert response.json()["issue"][0]["code"] == "not-found"


def test_writes_under_another_resource_are_404_and_change_nothing(client, facts):
    ident = facts["procedure"]
    put = client.put(f"/v4.3.0/observation/{ident}/", json=BODIES["observation"])
    assert put.status_code == 404
    assert client.delete(f"/v4.3.0/MedicationRequest/{ident}").status_code == 404
    patch = client.patch(f"/v4.3.0/diagnosticreport/{ident}/", json={"conclusion": "x"})
    assert patch.status_code == 404
    procedure = client.get(f"/v4.3.0/procedure/{ident}/").json()
    assert procedure["meta"]["versionId"] == "1"


def test_demo_data_serves_each_kind(client, database_url):
    from codoc_fhir.demo import load_demo
    from tests.conftest import make_settings

    assert load_demo(make_settings(database_url)).startswith("demo data loaded")
    kinds = ("MedicationRequest", "DiagnosticReport", "DocumentReference", "Procedure", "Condition")
    for type_name in kinds:
        assert client.get(f"/v4.3.0/{type_name}?patient=Patient/1").json()["total"] == 1
    bundle = client.get("/v4.3.0/Observation?patient=Patient/1&code=GLU,29463-7").json()
    ids = sorted(entry["resource"]["id"] for entry in bundle["entry"])
    assert len(ids) == 2 and ids[1].startswith("patient-data-")
    phenotype = client.get("/v4.3.0/observation/phenotype/1/").json()
    assert phenotype["derivedFrom"] == [{"reference": "DocumentReference/1"}]
