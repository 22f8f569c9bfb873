"""Conditional update, patch and delete (CONTRACT section 10): raw HTTP and Bundles."""

from __future__ import annotations

import pytest

from codoc_fhir.warehouse.schema import dwh_patient
from tests.factories import count_rows

BASE = "/v4.3.0"


def patient(ipp: str, family: str = "Martin", gender: str = "female") -> dict:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": "HIS", "value": ipp}],
        "name": [{"family": family}],
        "gender": gender,
        "birthDate": "1970-01-01",
    }


def test_conditional_update_creates_then_updates(client, engine):
    created = client.put(f"{BASE}/Patient?identifier=HIS|IPP1", json=patient("IPP1"))
    assert created.status_code == 201
    assert created.headers["location"].endswith("/Patient/1")
    updated = client.put(
        f"{BASE}/Patient?identifier=HIS|IPP1", json=patient("IPP1", family="Durand")
    )
    assert updated.status_code == 200
    assert updated.json()["id"] == "1"
    assert updated.json()["meta"]["versionId"] == "2"
    assert updated.json()["name"][0]["family"] == "Durand"
    assert count_rows(engine, dwh_patient) == 1
    codoc = client.put(f"{BASE}/patient/?identifier=HIS|IPP1", json=patient("IPP1", "Petit"))
    assert codoc.status_code == 200 and codoc.json()["meta"]["versionId"] == "3"


def test_conditional_update_with_several_matches_is_412_and_changes_nothing(client, engine):
    client.post(f"{BASE}/Patient", json=patient("IPP1"))
    client.post(f"{BASE}/Patient", json=patient("IPP2"))
    response = client.put(f"{BASE}/Patient?family=Martin", json=patient("IPP3"))
    assert response.status_code == 412
    assert response.json()["issue"][0]["code"] == "duplicate"
    assert count_rows(engine, dwh_patient) == 2
    assert client.get(f"{BASE}/Patient/1").json()["meta"]["versionId"] == "1"


def test_conditional_update_body_id_must_be_the_match(client):
    client.post(f"{BASE}/Patient", json=patient("IPP1"))
    client.post(f"{BASE}/Patient", json=patient("IPP2"))
    response = client.put(f"{BASE}/Patient?identifier=HIS|IPP1", json=dict(patient("IPP1"), id="2"))
    assert response.status_code == 400


def test_bad_conditions_are_400(client):
    for query in ("", "?unknown=1", "?_count=3"):
        response = client.put(f"{BASE}/Patient{query}", json=patient("IPP1"))
        assert response.status_code == 400, query
        assert response.json()["resourceType"] == "OperationOutcome"


def test_conditional_patch(client):
    client.post(f"{BASE}/Patient", json=patient("IPP1"))
    client.post(f"{BASE}/Patient", json=patient("IPP2"))
    one = client.patch(f"{BASE}/Patient?identifier=HIS|IPP2", json={"gender": "male"})
    assert one.status_code == 200
    assert one.json()["id"] == "2" and one.json()["gender"] == "male"
    none = client.patch(f"{BASE}/Patient?identifier=HIS|NOPE", json={"gender": "male"})
    assert none.status_code == 404
    several = client.patch(f"{BASE}/Patient?family=Martin", json={"gender": "male"})
    assert several.status_code == 412
    json_patch = client.patch(
        f"{BASE}/Patient?identifier=HIS|IPP1",
        content=b'[{"op":"replace","path":"/gender","value":"other"}]',
        headers={"content-type": "application/json-patch+json"},
    )
    assert json_patch.status_code == 200 and json_patch.json()["gender"] == "other"


def test_conditional_delete(client, engine):
    client.post(f"{BASE}/Patient", json=patient("IPP1"))
    client.post(f"{BASE}/Patient", json=patient("IPP2"))
    assert client.delete(f"{BASE}/Patient?family=Martin").status_code == 412
    assert count_rows(engine, dwh_patient) == 2
    assert client.delete(f"{BASE}/Patient?identifier=HIS|IPP1").status_code == 204
    assert client.get(f"{BASE}/Patient/1").status_code == 410
    assert client.delete(f"{BASE}/Patient?identifier=HIS|IPP1").status_code == 204  # no match
    assert count_rows(engine, dwh_patient) == 1
    history = client.get(f"{BASE}/Patient/1/_history").json()
    assert [e["request"]["method"] for e in history["entry"]] == ["DELETE", "POST"]


@pytest.mark.parametrize("bundle_type", ["transaction", "batch"])
def test_conditional_entries_in_bundles(client, engine, bundle_type):
    client.post(f"{BASE}/Patient", json=patient("IPP1"))
    bundle = {
        "resourceType": "Bundle",
        "type": bundle_type,
        "entry": [
            {
                "resource": patient("IPP1", family="Updated"),
                "request": {"method": "PUT", "url": "Patient?identifier=HIS|IPP1"},
            },
            {
                "resource": patient("IPP9"),
                "request": {"method": "PUT", "url": "Patient?identifier=HIS|IPP9"},
            },
        ],
    }
    answer = client.post(f"{BASE}/", json=bundle)
    assert answer.status_code == 200, answer.text
    statuses = [entry["response"]["status"] for entry in answer.json()["entry"]]
    assert statuses == ["200 OK", "201 Created"]
    assert client.get(f"{BASE}/Patient/1").json()["name"][0]["family"] == "Updated"
    cleanup = {
        "resourceType": "Bundle",
        "type": bundle_type,
        "entry": [
            {
                "resource": {"resourceType": "Patient", "gender": "male"},
                "request": {"method": "PATCH", "url": "Patient?identifier=HIS|IPP9"},
            },
            {"request": {"method": "DELETE", "url": "Patient?identifier=HIS|IPP1"}},
        ],
    }
    answer = client.post(f"{BASE}/", json=cleanup).json()
    assert [entry["response"]["status"] for entry in answer["entry"]] == [
        "200 OK",
        "204 No Content",
    ]
    assert count_rows(engine, dwh_patient) == 1
    assert client.get(f"{BASE}/Patient/2").json()["gender"] == "male"


def test_conditional_writes_are_in_the_capability_statement(client):
    statement = client.get(f"{BASE}/metadata").json()
    patient_entry = next(
        item for item in statement["rest"][0]["resource"] if item["type"] == "Patient"
    )
    assert patient_entry["conditionalUpdate"] is True
    assert patient_entry["conditionalDelete"] == "single"
