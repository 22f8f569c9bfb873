"""$validate (CONTRACT section 10): the checks of a write, nothing stored, raw HTTP."""

from __future__ import annotations

from codoc_fhir.warehouse.schema import dwh_data, dwh_resource_history, dwh_thesaurus_data
from tests.factories import count_rows, seed_procedure_context

BASE = "/v4.3.0"
PROCEDURE = {
    "resourceType": "Procedure",
    "status": "completed",
    "code": {"coding": [{"code": "NEW001"}]},
    "subject": {"reference": "Patient/1"},
    "performedDateTime": "2024-01-15T14:00:00Z",
}


def issue(response) -> dict:
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    return body["issue"][0]


def test_a_valid_create_is_information_and_stores_nothing(client, engine):
    seed_procedure_context(engine)
    response = client.post(f"{BASE}/Procedure/$validate", json=PROCEDURE)
    assert response.status_code == 200
    assert issue(response)["severity"] == "information"
    assert count_rows(engine, dwh_data, dwh_thesaurus_data, dwh_resource_history) == 0
    assert client.post(f"{BASE}/Procedure", json=PROCEDURE).status_code == 201
    assert count_rows(engine, dwh_data) == 1


def test_invalid_bodies_are_400_with_the_write_error(client, engine):
    seed_procedure_context(engine)
    missing = dict(PROCEDURE, subject={"reference": "Patient/999"})
    response = client.post(f"{BASE}/procedure/$validate", json=missing)
    assert response.status_code == 400
    assert "Patient with ID 999 does not exist" in issue(response)["diagnostics"]
    no_code = {key: value for key, value in PROCEDURE.items() if key != "code"}
    assert client.post(f"{BASE}/Procedure/$validate", json=no_code).status_code == 400
    wrong_type = dict(PROCEDURE, resourceType="Patient")
    assert client.post(f"{BASE}/Procedure/$validate", json=wrong_type).status_code == 400
    bad_date = dict(PROCEDURE, performedDateTime="yesterday")
    assert client.post(f"{BASE}/Procedure/$validate", json=bad_date).status_code == 400
    assert count_rows(engine, dwh_data, dwh_resource_history) == 0


def test_a_duplicate_identifier_is_reported_not_stored(client):
    patient = {
        "resourceType": "Patient",
        "identifier": [{"system": "HIS", "value": "IPP1"}],
        "gender": "female",
        "birthDate": "1970-01-01",
    }
    assert client.post(f"{BASE}/Patient", json=patient).status_code == 201
    response = client.post(f"{BASE}/Patient/$validate", json=patient)
    assert response.status_code == 400
    assert issue(response)["code"] in ("duplicate", "conflict")


def test_instance_validate_update_and_delete(client, engine):
    seed_procedure_context(engine)
    client.post(f"{BASE}/Procedure", json=PROCEDURE)
    update = dict(PROCEDURE, id="1", performedDateTime="2024-02-01T00:00:00Z")
    response = client.post(f"{BASE}/Procedure/1/$validate", json=update)
    assert response.status_code == 200
    assert client.get(f"{BASE}/Procedure/1").json()["meta"]["versionId"] == "1"
    other_id = dict(update, id="2")
    assert client.post(f"{BASE}/Procedure/1/$validate", json=other_id).status_code == 400
    as_parameters = {
        "resourceType": "Parameters",
        "parameter": [{"name": "resource", "resource": update}],
    }
    assert client.post(f"{BASE}/procedure/1/$validate", json=as_parameters).status_code == 200
    assert client.post(f"{BASE}/Procedure/9/$validate", json=update).status_code == 404
    # the patient is referenced by the procedure: it could not be deleted
    delete_patient = {
        "resourceType": "Parameters",
        "parameter": [{"name": "mode", "valueCode": "delete"}],
    }
    blocked = client.post(f"{BASE}/Patient/1/$validate", json=delete_patient)
    assert blocked.status_code == 400
    assert "referenced by" in issue(blocked)["diagnostics"]
    free = client.post(f"{BASE}/Procedure/1/$validate", json=delete_patient)
    assert free.status_code == 200
    assert client.get(f"{BASE}/Procedure/1").status_code == 200


def test_validate_in_the_capability_statement(client):
    statement = client.get(f"{BASE}/metadata").json()
    procedure = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Procedure")
    assert "validate" in {operation["name"] for operation in procedure["operation"]}


def test_validate_and_terminology_entries_in_bundles(client, engine):
    seed_procedure_context(engine)
    thesaurus = {
        "resourceType": "CodeSystem",
        "url": "urn:codoc:fhir:codesystem:ALLERGIES",
        "name": "ALLERGIES",
        "title": "Allergies",
        "status": "active",
        "content": "complete",
        "concept": [{"code": "PEN", "display": "Penicillin allergy"}],
    }
    assert client.post(f"{BASE}/CodeSystem", json=thesaurus).status_code == 201
    bad = dict(PROCEDURE, subject={"reference": "Patient/999"})
    for bundle_type in ("transaction", "batch"):
        bundle = {
            "resourceType": "Bundle",
            "type": bundle_type,
            "entry": [
                {
                    "resource": PROCEDURE,
                    "request": {"method": "POST", "url": "Procedure/$validate"},
                },
                {"resource": bad, "request": {"method": "POST", "url": "Procedure/$validate"}},
                {
                    "request": {
                        "method": "GET",
                        "url": "CodeSystem/$lookup?system=urn:codoc:fhir:codesystem:ALLERGIES"
                        "&code=PEN",
                    }
                },
                {"resource": PROCEDURE, "request": {"method": "POST", "url": "Procedure"}},
            ],
        }
        answer = client.post(f"{BASE}/", json=bundle)
        assert answer.status_code == 200, answer.text
        entries = answer.json()["entry"]
        assert entries[0]["response"]["status"] == "200 OK"
        assert entries[0]["resource"]["issue"][0]["severity"] == "information"
        assert entries[1]["response"]["status"] == "400 Bad Request"
        lookup = entries[2]["resource"]
        assert lookup["parameter"][1] == {"name": "display", "valueString": "Penicillin allergy"}
        assert entries[3]["response"]["status"] == "201 Created"
    # the validations stored nothing; the two real creates are there
    assert count_rows(engine, dwh_data) == 2
